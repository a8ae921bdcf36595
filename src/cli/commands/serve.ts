import * as fs from 'node:fs';
import { Engine } from '../../engine/engine';
import { UsageError, type Command } from '../command';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve maps over HTTP: POST /map/NAME (JSON or float32 bodies), /healthz, /metrics',
  flags: {
    map: { type: 'string', value: 'NAME=FILE', repeatable: true, required: true, description: 'a NAME=FILE pair (the map in FILE is served at POST /map/NAME)' },
    port: { type: 'number', value: 'PORT', default: 8080, description: 'the TCP port (0: any free one)' },
    host: { type: 'string', value: 'HOST', default: '127.0.0.1', description: 'the address to listen on' },
    'max-body-mb': { type: 'number', value: 'MB', description: 'the largest request body (default 16)' },
    'max-rows': { type: 'number', value: 'N', description: 'the most rows in one request (default 16384)' },
    threads: { type: 'number', value: 'N', default: 1, description: 'BLAS threads per GEMM' },
    grace: { type: 'number', value: 'S', default: 30, description: 'seconds for in-flight requests to finish after SIGTERM/SIGINT' },
    log: { type: 'boolean', description: 'log every request (JSON lines)' },
    'token-file': { type: 'string', value: 'FILE', description: 'require "Authorization: Bearer <token>" with the token in FILE (at least 16 characters)' },
    'max-connections': { type: 'number', value: 'N', description: 'the most open connections (default 256)' },
    'body-budget-mb': { type: 'number', value: 'MB', description: 'memory shared by all bodies over 64 KiB being read (default 64); beyond it, 503' },
    'headers-timeout': { type: 'number', value: 'S', description: 'seconds to receive the request headers (default 10)' },
    'request-timeout': { type: 'number', value: 'S', description: 'seconds to receive a whole request (default 30)' },
    'idle-timeout': { type: 'number', value: 'S', description: 'seconds a keep-alive connection may stay idle (default 10)' },
  },
  async run(args) {
    const specs = args.map as string[];
    const maps: Record<string, string> = {};
    for (const s of specs) {
      const i = s.indexOf('=');
      if (i <= 0 || i === s.length - 1) throw new UsageError(`--map: expected NAME=FILE, received '${s}'`);
      const name = s.slice(0, i);
      if (name in maps) throw new UsageError(`--map: expected distinct names, received '${name}' twice`);
      maps[name] = s.slice(i + 1);
    }
    const grace = args.grace as number;
    if (!(grace >= 0)) throw new UsageError(`--grace: expected seconds >= 0, received ${grace}`);
    const mb = args['max-body-mb'] as number | undefined;
    const budgetMb = args['body-budget-mb'] as number | undefined;
    const ms = (flag: string) => {
      const v = args[flag] as number | undefined;
      if (v !== undefined && !(v > 0)) throw new UsageError(`--${flag}: expected seconds > 0, received ${v}`);
      return v === undefined ? undefined : Math.round(v * 1000);
    };
    const token = args['token-file'] === undefined ? undefined : readToken(args['token-file'] as string);
    // One thread per GEMM by default: a service's GEMMs are small, and a multi-threaded BLAS
    // call pays a fork/join that, on a loaded machine, waits for a second core to be scheduled
    // (measured: seconds of stalls for 1-row GEMMs with 2 OpenMP threads on 2 busy cores).
    const engine = Engine.get();
    const threads = args.threads as number;
    engine.setThreads(threads);
    // fastify is loaded only by this command, not by every CLI start.
    const { createMapServer } = await import('../../serve/server');
    const server = createMapServer({
      maps,
      host: args.host as string,
      port: args.port as number,
      limits: {
        bodyBytes: mb === undefined ? undefined : Math.round(mb * 2 ** 20),
        maxRows: args['max-rows'] as number | undefined,
        bodyBudgetBytes: budgetMb === undefined ? undefined : Math.round(budgetMb * 2 ** 20),
        maxConnections: args['max-connections'] as number | undefined,
        headersTimeoutMs: ms('headers-timeout'),
        requestTimeoutMs: ms('request-timeout'),
        idleTimeoutMs: ms('idle-timeout'),
      },
      logger: args.log === true,
      ...(token !== undefined ? { token } : {}),
    });
    for (const [name, m] of server.maps) {
      process.stdout.write(`map ${name}: ${m.p} -> ${m.q} (${m.metadata.estimator}, ${m.metadata.source.model} -> ${m.metadata.target.model}) from ${maps[name]}\n`);
    }
    process.stdout.write(`engine ${engine.name}, ${threads} thread(s) per GEMM\n`);
    const url = await server.listen();
    process.stdout.write(`listening on ${url}\n`);

    // SIGTERM/SIGINT: stop accepting, finish what is in flight, then return (exit status 0).
    // Past the grace period the remaining connections are cut and the command fails (status 1).
    await new Promise<void>((resolve, reject) => {
      const stop = (signal: NodeJS.Signals) => {
        process.removeListener('SIGTERM', stop).removeListener('SIGINT', stop);
        process.stdout.write(`${signal}: closing, ${server.inflight} request(s) in flight\n`);
        let cut = 0;
        const timer = setTimeout(() => {
          cut = server.inflight;
          server.closeAllConnections();
        }, grace * 1000);
        server.close().then(() => {
          clearTimeout(timer);
          if (cut > 0) return reject(new Error(`grace period of ${grace} s over: ${cut} request(s) cut off unfinished`));
          process.stdout.write('closed\n');
          resolve();
        }, reject);
      };
      process.once('SIGTERM', stop).once('SIGINT', stop);
    });
  },
};

/** The bearer token: the file's first line (kept out of the command line, where `ps` shows it). */
function readToken(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.split(/\r?\n/)[0].trim();
  if (token.length < 16 || /\s/.test(token)) throw new UsageError(`--token-file: expected a token of 16 or more characters without spaces on the first line of ${file}, found ${token.length} character(s)`);
  return token;
}
