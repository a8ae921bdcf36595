// Public surface of cluster extraction ('embmap/dist/src/cluster', like the HTTP service: kept out
// of the main entry point; BullMQ itself is loaded only when a queue is used).
export { type ClusterExtractOptions, type ClusterSummary, extractOnQueue } from './coordinator';
export { type RunningWorker, type WorkerOptions, startWorker } from './worker';
export { type StatsMeta, mergeStatsDir, readStats, writeStats } from './stats-files';
export type { JobModel, JobStats, ShardJob, ShardResult } from './job';
