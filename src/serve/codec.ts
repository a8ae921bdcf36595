// Request bodies to float32 rows and mapped rows to response bodies, for the map service.
// JSON: {"vector": [p numbers]} or {"vectors": [[p numbers], ...]}; binary
// (application/octet-stream): rows of p little-endian float32 values laid end to end, the row
// count being the byte length / (4p). The response mirrors the request's form. Every check
// happens here, before a request joins a batch, and fails with an HttpError naming the problem.
import * as os from 'node:os';
import { Matrix } from '../core/matrix';
import { assertFinite, describe } from '../core/validate';

export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export type BodyForm = 'vector' | 'vectors' | 'binary';

export interface Rows {
  form: BodyForm;
  x: Float32Array;
  rows: number;
}

export interface Shape {
  /** The map's source dimension. */
  p: number;
  /** Most rows one request may carry. */
  maxRows: number;
}

const FLOAT32_MAX = 3.4028234663852886e38;
// Float32Array views use the machine's byte order; the wire format is little-endian.
const NATIVE_LE = os.endianness() === 'LE';

const expectedJson = (p: number) => `{"vector": [${p} numbers]} or {"vectors": [[${p} numbers], ...]}`;

function tooMany(what: string, rows: number, maxRows: number): HttpError {
  return new HttpError(413, 'too_many_rows', `${what}: expected at most ${maxRows} vectors per request, received ${rows}`);
}

/** Copies one JSON row into `out` at `offset`, checking its length and every value. */
function putRow(name: string, row: unknown, p: number, out: Float32Array, offset: number): void {
  if (!Array.isArray(row)) throw new HttpError(400, 'bad_body', `${name}: expected an array of ${p} numbers, received ${describe(row)}`);
  if (row.length !== p) {
    throw new HttpError(400, 'bad_dimension', `${name}: expected ${p} numbers (the map's source dimension), received ${row.length}`);
  }
  for (let i = 0; i < p; i++) {
    const v = row[i];
    if (typeof v !== 'number') throw new HttpError(400, 'not_numeric', `${name}[${i}]: expected a number, received ${describe(v)}`);
    // JSON has no NaN, but 1e999 parses to Infinity and 1e39 overflows float32.
    if (!(Math.abs(v) <= FLOAT32_MAX)) {
      throw new HttpError(400, 'not_finite', `${name}[${i}]: expected a finite float32 number (|x| <= 3.4028235e38), received ${describe(v)}`);
    }
    out[offset + i] = v;
  }
}

/** A JSON body's text to a value; an empty or malformed body is a 400 saying where it broke. */
export function parseJson(text: string): unknown {
  if (text === '') throw new HttpError(400, 'bad_body', 'body: expected JSON, received an empty body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `body: expected valid JSON, received ${(err as Error).message}`);
  }
}

/** A parsed JSON body to rows. */
export function decodeJson(body: unknown, { p, maxRows }: Shape): Rows {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'bad_body', `body: expected ${expectedJson(p)}, received ${body === undefined ? 'no body' : describe(body)}`);
  }
  const keys = Object.keys(body);
  if (keys.length !== 1 || (keys[0] !== 'vector' && keys[0] !== 'vectors')) {
    const got = keys.length ? `the keys ${keys.map((k) => JSON.stringify(k)).join(', ')}` : 'an empty object';
    throw new HttpError(400, 'bad_body', `body: expected ${expectedJson(p)}, received ${got}`);
  }
  if (keys[0] === 'vector') {
    const x = new Float32Array(p);
    putRow('vector', (body as { vector: unknown }).vector, p, x, 0);
    return { form: 'vector', x, rows: 1 };
  }
  const vectors = (body as { vectors: unknown }).vectors;
  if (!Array.isArray(vectors) || vectors.length === 0) {
    throw new HttpError(400, 'bad_body', `vectors: expected a non-empty array of arrays of ${p} numbers, received ${describe(vectors)}`);
  }
  if (vectors.length > maxRows) throw tooMany('vectors', vectors.length, maxRows);
  const x = new Float32Array(vectors.length * p);
  for (let r = 0; r < vectors.length; r++) putRow(`vectors[${r}]`, vectors[r], p, x, r * p);
  return { form: 'vectors', x, rows: vectors.length };
}

/**
 * A binary body (little-endian float32 rows) to rows. `declaredDim`, the optional X-Embmap-Dim
 * request header, catches a wrong dimension that a byte count alone cannot (3 rows of 16 values
 * are also 1 row of 48).
 */
export function decodeBinary(body: Buffer, { p, maxRows }: Shape, declaredDim?: string): Rows {
  if (declaredDim !== undefined && declaredDim !== String(p)) {
    throw new HttpError(400, 'bad_dimension', `x-embmap-dim: expected ${p} (the map's source dimension), received ${JSON.stringify(declaredDim)}`);
  }
  const rowBytes = 4 * p;
  const what = `rows of ${p} little-endian float32 values (${rowBytes} bytes each)`;
  if (body.length === 0) throw new HttpError(400, 'bad_body', `body: expected one or more ${what}, received 0 bytes`);
  if (body.length % rowBytes !== 0) {
    const whole = Math.floor(body.length / rowBytes);
    throw new HttpError(400, 'truncated', `body: expected a whole number of ${what}, received ${body.length} bytes = ${whole} row(s) + ${body.length % rowBytes} bytes (truncated, or another dimension)`);
  }
  const rows = body.length / rowBytes;
  if (rows > maxRows) throw tooMany('body', rows, maxRows);
  let x: Float32Array;
  if (NATIVE_LE && body.byteOffset % 4 === 0) {
    x = new Float32Array(body.buffer, body.byteOffset, body.length / 4);
  } else {
    const copy = Buffer.from(body);
    if (!NATIVE_LE) copy.swap32();
    x = new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4);
  }
  try {
    assertFinite('body', new Matrix(x, rows, p));
  } catch (err) {
    throw new HttpError(400, 'not_finite', (err as Error).message);
  }
  return { form: 'binary', x, rows };
}

/** Mapped rows to a response body in the request's form: a JSON string or little-endian bytes. */
export function encodeRows(form: BodyForm, y: Float32Array, rows: number, q: number): string | Buffer {
  if (form === 'binary') {
    // IEEE bytes carry an overflow to ±Infinity as it is.
    const bytes = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
    return NATIVE_LE ? bytes : Buffer.from(bytes).swap32();
  }
  // Finite input can still overflow float32 through large weights, and JSON has no Infinity.
  try {
    assertFinite('mapped values', new Matrix(y, rows, q));
  } catch (err) {
    throw new HttpError(422, 'overflow', `${(err as Error).message}: the result overflows float32 for this input`);
  }
  // A typed array joins its values as JSON numbers would print them (the exact float32 values).
  if (form === 'vector') return `{"vector":[${y.join(',')}]}`;
  const parts: string[] = new Array(rows);
  for (let r = 0; r < rows; r++) parts[r] = `[${y.subarray(r * q, (r + 1) * q).join(',')}]`;
  return `{"vectors":[${parts.join(',')}]}`;
}
