// The map service: fastify routes over loaded (immutable, shared) maps, one micro-batcher per
// map, Prometheus metrics, size limits, timeouts, a connection cap, a memory budget for bodies,
// an optional bearer token, and graceful close. Usable as a library:
//   const server = createMapServer({ maps: { a2b: 'a2b.safetensors' }, port: 0 });
//   const url = await server.listen();   ...   await server.close();
import { timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import type * as FastifyModule from 'fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { optional } from '../core/optional';
import { assertInteger, fail } from '../core/validate';
import { LinearMap } from '../maps/linear-map';
import { MicroBatcher, type BatcherOptions } from './batcher';
import { BodyBudget, declaredLength, readBody } from './body';
import { decodeBinary, decodeJson, encodeRows, HttpError, parseJson, type Rows, type Shape } from './codec';
import { JsonOffload } from './json-offload';
import { serverMetrics, type ServerMetrics } from './metrics';

export interface ServerLimits {
  /** Largest request body in bytes (default 16 MiB). */
  bodyBytes?: number;
  /** Most vectors in one request (default 16384). */
  maxRows?: number;
  /** Bytes of request bodies over 64 KiB buffered at once, all requests together (default 64 MiB); beyond it: 503. */
  bodyBudgetBytes?: number;
  /** JSON bodies above this many bytes are parsed, and their answers printed, on a worker thread (default 64 KiB). */
  jsonInlineBytes?: number;
  /** Open connections at most (default 256); more are closed on arrival. */
  maxConnections?: number;
  /** Time for a request's headers to arrive (default 10 s). */
  headersTimeoutMs?: number;
  /** Time for a whole request, headers and body, to arrive (default 30 s). */
  requestTimeoutMs?: number;
  /** A connection with no traffic for this long is closed, kept-alive ones included (default 10 s). */
  idleTimeoutMs?: number;
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
  /** When set, every route but /healthz requires `Authorization: Bearer <token>`. */
  token?: string;
}

export interface MapServer {
  /**
   * The fastify instance, to add routes or hooks or to inject() requests in tests: cast it,
   * `server.app as FastifyInstance`. Typed unknown so that embmap's types need no fastify.
   */
  readonly app: unknown;
  readonly maps: ReadonlyMap<string, LinearMap>;
  readonly metrics: ServerMetrics;
  /** Requests received and not yet answered. */
  readonly inflight: number;
  /** Starts listening; resolves to the base URL (e.g. http://127.0.0.1:8080). */
  listen(): Promise<string>;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
  /** Cuts every open connection, in-flight requests included (e.g. when close() outlasts a grace period). */
  closeAllConnections(): void;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
// Bodies up to this size are outside the body budget: at most maxConnections x 64 KiB in all.
const SMALL_BODY_BYTES = 64 * 1024;
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

/** A model named by a file path is shown by its file name: /maps does not reveal the server's folders. */
function publicModel(side: { model: string; dim: number }): { model: string; dim: number } {
  return /[\\/]/.test(side.model) ? { ...side, model: path.basename(side.model) } : side;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Any error to the JSON error response {error, code, statusCode}. */
function toHttpError(err: FastifyError | HttpError, req: FastifyRequest): HttpError {
  if (err instanceof HttpError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(415, 'unsupported_media_type',
        `content-type: expected application/json or application/octet-stream, received ${JSON.stringify(req.headers['content-type'] ?? 'none')}`);
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
  const given = opts.limits ?? {};
  const limits: Required<ServerLimits> = {
    bodyBytes: given.bodyBytes ?? 16 * 2 ** 20,
    maxRows: given.maxRows ?? 16384,
    bodyBudgetBytes: given.bodyBudgetBytes ?? 64 * 2 ** 20,
    jsonInlineBytes: given.jsonInlineBytes ?? 64 * 1024,
    maxConnections: given.maxConnections ?? 256,
    headersTimeoutMs: given.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: given.requestTimeoutMs ?? 30_000,
    idleTimeoutMs: given.idleTimeoutMs ?? 10_000,
  };
  for (const [k, v] of Object.entries(limits)) assertInteger(`limits.${k}`, v, k === 'jsonInlineBytes' ? 0 : 1);
  if (limits.bodyBudgetBytes < limits.bodyBytes) {
    throw new RangeError(`limits.bodyBudgetBytes: expected at least limits.bodyBytes (${limits.bodyBytes}), received ${limits.bodyBudgetBytes}`);
  }
  if (opts.token !== undefined && (typeof opts.token !== 'string' || opts.token.length < 16 || /\s/.test(opts.token))) {
    fail(TypeError, 'token', 'a string of 16 or more characters without whitespace', opts.token);
  }
  const token = opts.token === undefined ? undefined : Buffer.from(`Bearer ${opts.token}`);
  const budget = new BodyBudget(limits.bodyBudgetBytes);
  const offload = new JsonOffload();

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

  const app = optional<typeof FastifyModule>('fastify', 'the HTTP service').fastify({
    logger: opts.logger ?? false,
    bodyLimit: limits.bodyBytes,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: Math.min(5000, limits.idleTimeoutMs),
    requestTimeout: limits.requestTimeoutMs,
    // Node checks the request and headers timeouts every connectionsCheckingInterval (default 30 s).
    http: { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) },
  });
  app.server.maxConnections = limits.maxConnections;

  // Only the two body types (fastify also parses text/plain by default), both read as bytes into a
  // buffer reserved from the budget by the route's preParsing check; JSON is parsed by the handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/octet-stream'], (req, payload, done) => {
    readBody(payload, declaredLength(req.raw, limits.bodyBytes), limits.bodyBytes).then((body) => done(null, body), (err: Error) => done(err, undefined));
  });

  app.addHook('onRequest', async (req, reply) => {
    inflight++;
    reply.raw.once('close', () => inflight--);
    if (token && req.url !== '/healthz') {
      const given = Buffer.from(req.headers.authorization ?? '');
      if (given.length !== token.length || !timingSafeEqual(given, token)) {
        reply.header('www-authenticate', 'Bearer');
        throw new HttpError(401, 'unauthorized', `authorization: expected "Bearer <the server's token>", received ${req.headers.authorization === undefined ? 'none' : 'another value'}`);
      }
    }
  });
  // A request answered before its body was read (unknown map, 401, 413, 503, ...): the connection
  // is closed instead of reading, and discarding, the rest of the body.
  app.addHook('onSend', async (req, reply) => {
    if (!req.raw.complete) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (req) => {
    if (!req.raw.complete) req.raw.socket?.destroy();
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, code: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    const e = toHttpError(err, req);
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
    // An unknown map, a body too large or one beyond the memory budget is refused before the body is read.
    onRequest: async (req, reply) => {
      if (!entries.has(req.params.name)) {
        const list = names.slice(0, 20).map((n) => JSON.stringify(n)).join(', ') + (names.length > 20 ? ', ...' : '');
        throw new HttpError(404, 'unknown_map', `map: expected one of ${list}, received ${JSON.stringify(req.params.name)}`);
      }
      // Small bodies are bounded by the connection cap alone, so that stalled large ones cannot lock out single vectors.
      const reserved = declaredLength(req.raw, limits.bodyBytes) ?? limits.bodyBytes;
      if (reserved <= SMALL_BODY_BYTES) return;
      budget.reserve(reserved);
      reply.raw.once('close', () => budget.release(reserved));
    },
    handler: async (req, reply: FastifyReply) => {
      const { map, batcher, shape } = entries.get(req.params.name)!;
      const body = req.body as Buffer | undefined;
      let rows: Rows;
      if (body === undefined) {
        rows = decodeJson(undefined, shape);
      } else if (req.headers['content-type']?.startsWith('application/octet-stream')) {
        const dim = req.headers['x-embmap-dim'];
        rows = decodeBinary(body, shape, Array.isArray(dim) ? dim.join(',') : dim);
      } else {
        rows = body.length > limits.jsonInlineBytes ? await offload.decode(body, shape) : decodeJson(parseJson(body.toString('utf8')), shape);
      }
      const y = await batcher.submit(rows.x, rows.rows);
      const out = rows.form !== 'binary' && y.length * 12 > limits.jsonInlineBytes ? await offload.encode(rows.form, y, rows.rows, map.q) : encodeRows(rows.form, y, rows.rows, map.q);
      metrics.vectors.inc({ map: req.params.name }, rows.rows);
      if (rows.form === 'binary') return reply.type('application/octet-stream').header('x-embmap-dim', map.q).send(out);
      return reply.type(JSON_TYPE).send(out);
    },
  });

  app.get('/maps', async () => ({
    maps: names.map((name) => {
      const m = entries.get(name)!.map.metadata;
      return { name, source: publicModel(m.source), target: publicModel(m.target), estimator: m.estimator, pairs: m.pairs, created: m.created };
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
      if (!token && !isLoopback(host)) {
        process.stderr.write(`warning: serving on ${host} beyond this machine without a token: anyone who can reach the port can use the maps (set a token, e.g. embmap serve --token-file)\n`);
      }
      await app.listen({ host, port });
      const addr = app.server.address();
      if (addr === null || typeof addr === 'string') return `http://${host}:${port}`;
      return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    },
    close: () => app.close().finally(() => offload.close()),
    closeAllConnections: () => app.server.closeAllConnections(),
  };
}
