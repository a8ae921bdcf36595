// The job system under cluster runs: BullMQ on Redis, optional packages loaded on first use so
// that nothing outside src/cluster loads them (a missing one is an error naming it). One queue holds the shards of every run; job ids start with the run id, so
// runs on one Redis stay apart and re-adding a shard that is already queued is a no-op.
import { optional } from '../core/optional';
import { fail } from '../core/validate';

type BullMQ = typeof import('bullmq');
type IORedis = typeof import('ioredis').default;

/** BullMQ, loaded on first use. */
export function bullmq(): BullMQ {
  return optional<BullMQ>('bullmq', 'extraction on a queue (--queue, embmap worker)');
}

/** The queue every run's shards go to. */
export const QUEUE_NAME = 'embmap-extract';

export interface RedisTarget {
  /** The URL as given (for messages). */
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: object;
}

/** Parses redis://[user:password@]host[:port][/db] (rediss:// for TLS); `flag` names the argument in errors. */
export function parseRedisUrl(flag: string, url: unknown): RedisTarget {
  const expected = 'a Redis URL redis://HOST:PORT/DB (or rediss:// for TLS)';
  if (typeof url !== 'string') return fail(TypeError, flag, expected, url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(RangeError, flag, expected, url);
  }
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !u.hostname) fail(RangeError, flag, expected, url);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '') || '0';
  const db = Number(dbText);
  if (!/^\d+$/.test(dbText) || db > 65535) fail(RangeError, `${flag} database`, `a database number after the slash (e.g. /0)`, url);
  return {
    url,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * ioredis options for BullMQ: commands wait while Redis is away (it may be restarting) and the
 * client reconnects every second at most, for ever.
 */
export function connectionOptions(target: RedisTarget): Record<string, unknown> {
  const { url: _url, ...options } = target;
  return { ...options, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(100 * times, 1000) };
}

/** Fails fast, naming the URL, when nothing that answers like Redis is there. */
export async function assertReachable(target: RedisTarget, timeoutMs = 5000): Promise<void> {
  const Redis = optional<{ default: IORedis }>('ioredis', 'extraction on a queue (--queue, embmap worker)').default;
  const { url: _url, ...options } = target;
  const client = new Redis({ ...options, lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  // The socket's error (e.g. ECONNREFUSED) says more than connect()'s "Connection is closed".
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== 'PONG') throw new Error(`expected PONG to PING, received ${JSON.stringify(pong)}`);
  } catch (err) {
    throw new Error(`${target.url}: cannot reach Redis (${(cause ?? (err as Error)).message})`);
  } finally {
    client.disconnect();
  }
}

/** The id of a run's shard job (BullMQ ids may not contain ':'). */
export function jobId(run: string, shard: number): string {
  return `${run}-${shard}`;
}
