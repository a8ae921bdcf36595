import { startWorker } from '../../cluster/worker';
import { DEVICES, type Device } from '../../onnx/runtime';
import { UsageError, type Command } from '../command';

const USAGE =
  'embmap worker --queue redis://HOST:PORT/DB [--workers N] [--threads N] [--device cpu|cuda|auto] [--lock-ms MS] [--stalled-ms MS] [--quiet]\n' +
  '  Takes shard jobs of `embmap extract --queue` runs until SIGTERM/SIGINT (the shard in hand is finished first).\n' +
  '  Run any number, on any machines that mount the runs\' shared folders and see the model files (docs/CLUSTER.md).\n' +
  '  --lock-ms: a worker silent this long (killed, frozen) loses its shard to another (default 30000).';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'take shard jobs of cluster extractions from a Redis queue (BullMQ)',
  usage: USAGE,
  flags: { queue: 'string', workers: 'number', threads: 'number', device: 'string', 'lock-ms': 'number', 'stalled-ms': 'number', quiet: 'boolean' },
  async run(args) {
    if (typeof args.queue !== 'string') throw new UsageError(`--queue: expected redis://HOST:PORT/DB\nusage: ${USAGE}`);
    const device = (args.device as string | undefined) ?? 'cpu';
    if (!(DEVICES as readonly string[]).includes(device)) throw new UsageError(`--device: expected one of ${DEVICES.join(', ')}, received '${device}'`);
    for (const flag of ['workers', 'threads', 'lock-ms', 'stalled-ms']) {
      const v = args[flag];
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new UsageError(`--${flag}: expected an integer >= 1, received ${v}`);
    }
    const worker = await startWorker({
      queue: args.queue,
      workers: args.workers as number | undefined,
      threads: args.threads as number | undefined,
      device: device as Device,
      lockMs: args['lock-ms'] as number | undefined,
      stalledMs: args['stalled-ms'] as number | undefined,
      log: args.quiet ? null : process.stderr,
    });
    await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
    await worker.close();
  },
};
