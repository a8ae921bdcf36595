// Serving maps over HTTP, and the micro-batcher for callers building their own server.
export { createMapServer, type MapServer, type MapServerOptions, type ServerLimits } from './server';
export { MicroBatcher, type BatcherOptions } from './batcher';
export { HttpError } from './codec';
