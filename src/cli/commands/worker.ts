import { startWorker } from '../../cluster/worker';
import { DEVICES, type Device } from '../../onnx/session-options';
import { UsageError, type Command } from '../command';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'take shard jobs of cluster extractions from a Redis queue (BullMQ)',
  notes:
    'Takes shard jobs of `embmap extract --queue` runs until SIGTERM/SIGINT (the shard in hand is finished\n' +
    'first). Run any number, on any machines that mount the runs\' shared folders and see the model files\n' +
    '(docs/CLUSTER.md; deploy/ has a Kubernetes Deployment and systemd units).',
  flags: {
    queue: { type: 'string', value: 'redis://HOST:PORT/DB', required: true, description: 'the Redis the coordinators queue shards in' },
    workers: { type: 'number', value: 'N', description: 'image-decoding worker threads (default: half the cores, 1 to 4)' },
    threads: { type: 'number', value: 'N', description: "ONNX Runtime's threads per model" },
    device: { type: 'string', choices: DEVICES, default: 'cpu', description: 'where the models run' },
    'lock-ms': { type: 'number', value: 'MS', description: 'a worker silent this long (killed, frozen) loses its shard to another (default 30000)' },
    'stalled-ms': { type: 'number', value: 'MS', description: 'how often lost shards are looked for (default 30000)' },
    quiet: { type: 'boolean', short: 'q', description: 'no line per shard' },
  },
  async run(args) {
    for (const flag of ['workers', 'threads', 'lock-ms', 'stalled-ms']) {
      const v = args[flag];
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new UsageError(`--${flag}: expected an integer >= 1, received ${v}`);
    }
    const worker = await startWorker({
      queue: args.queue as string,
      workers: args.workers as number | undefined,
      threads: args.threads as number | undefined,
      device: args.device as Device,
      lockMs: args['lock-ms'] as number | undefined,
      stalledMs: args['stalled-ms'] as number | undefined,
      log: args.quiet ? null : process.stderr,
    });
    await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
    await worker.close();
  },
};
