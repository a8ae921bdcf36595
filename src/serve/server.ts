// The map service: fastify routes over loaded (immutable, shared) maps, one micro-batcher per
// map, Prometheus metrics, size limits and graceful close. Usable as a library:
//   const server = createMapServer({ maps: { a2b: 'a2b.safetensors' }, port: 0 });
//   const url = await server.listen();   ...   await server.close();
import type * as FastifyModule from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { optional } from '../core/optional';
import { assertInteger, fail } from '../core/validate';
import { LinearMap } from '../maps/linear-map';
import { MicroBatcher, type BatcherOptions } from './batcher';
import { decodeBinary, decodeJson, encodeRows, HttpError, type Shape } from './codec';
import { serverMetrics, type ServerMetrics } from './metrics';

export interface ServerLimits {
  /** Largest request body in bytes (default 16 MiB). */
  bodyBytes?: number;
  /** Most vectors in one request (default 16384). */
  maxRows?: number;
}

export interface MapServerOptions {
  /** Map name (letters, digits, '.', '_', '-'; it appears in URLs and metric labels) to a LinearMap or a .safetensors path. */
  maps: Record<string, LinearMap | string> | ReadonlyMap<string, LinearMap | string>;
  /** Default 127.0.0.1 (loopback only); '0.0.0.0' or '::' to serve the network. */
  host?: string;
  /** Default 8080; 0 picks a free port (see listen()'s answer). */
  port?: number;
  limits?: ServerLimits;
  /** Micro-batching: rows per GEMM and the work below which a batch runs on the event-loop thread. */
  batch?: Omit<BatcherOptions, 'onBatch'>;
  /** fastify's request log (pino, JSON lines on stdout); default off. */
  logger?: boolean;
}

export interface MapServer {
  readonly app: FastifyInstance;
  readonly maps: ReadonlyMap<string, LinearMap>;
  readonly metrics: ServerMetrics;
  /** Requests received and not yet answered. */
  readonly inflight: number;
  /** Starts listening; resolves to the base URL (e.g. http://127.0.0.1:8080). */
  listen(): Promise<string>;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const JSON_TYPE = 'application/json; charset=utf-8';

interface Entry {
  map: LinearMap;
  batcher: MicroBatcher;
  shape: Shape;
}

function loadMaps(maps: MapServerOptions['maps']): Map<string, LinearMap> {
  if (maps === null || typeof maps !== 'object') fail(TypeError, 'maps', 'an object or Map of name -> LinearMap or .safetensors path', maps);
  const entries = maps instanceof Map ? [...maps.entries()] : Object.entries(maps);
  if (entries.length === 0) throw new RangeError('maps: expected at least one map, received none');
  const out = new Map<string, LinearMap>();
  for (const [name, m] of entries) {
    if (!NAME.test(name)) fail(RangeError, 'maps', 'names of 1-64 letters, digits, ".", "_" or "-"', name);
    if (m instanceof LinearMap) out.set(name, m);
    else if (typeof m === 'string') out.set(name, LinearMap.load(m));
    else fail(TypeError, `maps.${name}`, 'a LinearMap or a .safetensors path', m);
  }
  return out;
}

/** Any error to the JSON error response {error, code, statusCode}. */
function toHttpError(err: FastifyError | HttpError, req: FastifyRequest, limits: Required<ServerLimits>): HttpError {
  if (err instanceof HttpError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const len = req.headers['content-length'];
      return new HttpError(413, 'too_large', `body: expected at most ${limits.bodyBytes} bytes, received ${len ? `${len} bytes` : 'more'}`);
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(415, 'unsupported_media_type',
        `content-type: expected application/json or application/octet-stream, received ${JSON.stringify(req.headers['content-type'] ?? 'none')}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'bad_length', `body: expected ${req.headers['content-length']} bytes as content-length says, received another length`);
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return new HttpError(status, err.code?.toLowerCase() ?? 'bad_request', err.message);
  return new HttpError(500, 'internal', `internal error: ${err.message}`);
}

export function createMapServer(opts: MapServerOptions): MapServer {
  if (opts === null || typeof opts !== 'object') fail(TypeError, 'options', 'an object with maps', opts);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  if (typeof host !== 'string' || host === '') fail(TypeError, 'host', 'a host name or address', host);
  assertInteger('port', port, 0, 65535);
  const limits: Required<ServerLimits> = { bodyBytes: opts.limits?.bodyBytes ?? 16 * 2 ** 20, maxRows: opts.limits?.maxRows ?? 16384 };
  assertInteger('limits.bodyBytes', limits.bodyBytes, 1);
  assertInteger('limits.maxRows', limits.maxRows, 1);

  let inflight = 0;
  const metrics = serverMetrics(() => inflight);
  const maps = loadMaps(opts.maps);
  const entries = new Map<string, Entry>();
  for (const [name, map] of maps) {
    const batcher = new MicroBatcher(map, {
      ...opts.batch,
      onBatch: (rows, requests) => {
        metrics.batchRows.observe(rows, { map: name });
        metrics.batchRequests.observe(requests, { map: name });
      },
    });
    entries.set(name, { map, batcher, shape: { p: map.p, maxRows: limits.maxRows } });
  }
  const names = [...entries.keys()];

  const app = optional<typeof FastifyModule>('fastify', 'the HTTP service').fastify({ logger: opts.logger ?? false, bodyLimit: limits.bodyBytes });

  // Only the two body types (fastify also parses text/plain by default), and our own JSON
  // parser: the default one drops the parser's message (where the JSON broke).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(new HttpError(400, 'bad_body', 'body: expected JSON, received an empty body'), undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(new HttpError(400, 'invalid_json', `body: expected valid JSON, received ${(err as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (_req, reply) => {
    inflight++;
    reply.raw.once('close', () => inflight--);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, code: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    const e = toHttpError(err, req, limits);
    if (e.statusCode >= 500) req.log.error(err);
    return reply.code(e.statusCode).type(JSON_TYPE).send({ error: e.message, code: e.code, statusCode: e.statusCode });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).type(JSON_TYPE).send({
      error: `route: expected POST /map/NAME, GET /maps, GET /healthz or GET /metrics, received ${req.method} ${req.url.split('?')[0]}`,
      code: 'not_found',
      statusCode: 404,
    }),
  );

  app.post<{ Params: { name: string } }>('/map/:name', {
    // An unknown map is refused before its body is read.
    onRequest: async (req) => {
      if (!entries.has(req.params.name)) {
        const list = names.slice(0, 20).map((n) => JSON.stringify(n)).join(', ') + (names.length > 20 ? ', ...' : '');
        throw new HttpError(404, 'unknown_map', `map: expected one of ${list}, received ${JSON.stringify(req.params.name)}`);
      }
    },
    handler: async (req, reply: FastifyReply) => {
      const { map, batcher, shape } = entries.get(req.params.name)!;
      const dim = req.headers['x-embmap-dim'];
      const rows = Buffer.isBuffer(req.body) ? decodeBinary(req.body, shape, Array.isArray(dim) ? dim.join(',') : dim) : decodeJson(req.body, shape);
      const y = await batcher.submit(rows.x, rows.rows);
      const body = encodeRows(rows.form, y, rows.rows, map.q);
      metrics.vectors.inc({ map: req.params.name }, rows.rows);
      if (rows.form === 'binary') return reply.type('application/octet-stream').header('x-embmap-dim', map.q).send(body);
      return reply.type(JSON_TYPE).send(body);
    },
  });

  app.get('/maps', async () => ({
    maps: names.map((name) => {
      const m = entries.get(name)!.map.metadata;
      return { name, source: m.source, target: m.target, estimator: m.estimator, pairs: m.pairs, created: m.created };
    }),
  }));
  app.get('/healthz', async () => ({ status: 'ok', maps: names.length }));
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.registry.render()));

  return {
    app,
    maps,
    metrics,
    get inflight() {
      return inflight;
    },
    async listen() {
      await app.listen({ host, port });
      const addr = app.server.address();
      if (addr === null || typeof addr === 'string') return `http://${host}:${port}`;
      return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    },
    close: () => app.close(),
  };
}
