// Request bodies under a memory budget. A body's declared length (a chunked body: the size limit)
// is reserved from one budget shared by all requests before a byte is read (a request beyond it is
// answered 503 at once), and the bytes go into one buffer of exactly that length: a slow client
// holds at most what it sent, and the memory returns to the system when the request ends (large
// buffers are not pooled).
import type { IncomingMessage } from 'node:http';
import { MessageChannel } from 'node:worker_threads';
import { HttpError } from './codec';

export class BodyBudget {
  private used = 0;

  constructor(readonly bytes: number) {}

  get reserved(): number {
    return this.used;
  }

  /** Reserves `n` bytes, or answers why not; the reservation ends with `release`. */
  reserve(n: number): void {
    if (this.used + n > this.bytes) {
      throw new HttpError(503, 'busy', `body: the server is buffering ${this.used} bytes of other requests' bodies, at most ${this.bytes} in all; retry later`);
    }
    this.used += n;
  }

  release(n: number): void {
    this.used -= n;
  }
}

/** The body's content-length, checked against `limit`; undefined for a chunked body (it may take up to `limit`). */
export function declaredLength(req: IncomingMessage, limit: number): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const n = Number(header);
  if (!/^\d+$/.test(header) || !Number.isSafeInteger(n)) throw new HttpError(400, 'bad_length', `content-length: expected a byte count, received ${JSON.stringify(header)}`);
  if (n > limit) throw new HttpError(413, 'too_large', `body: expected at most ${limit} bytes, received ${n} bytes`);
  return n;
}

/** Frees a buffer's memory at once: its ArrayBuffer is transferred into a message that is discarded. */
function release(buf: Buffer): void {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [buf.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
}

/** Reads exactly `length` bytes of `stream` into one buffer; with no length (chunked), at most `limit` bytes. */
export function readBody(stream: NodeJS.ReadableStream, length: number | undefined, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const body = length === undefined ? undefined : Buffer.allocUnsafeSlow(length);
    let filled = 0;
    const onData = (chunk: Buffer) => {
      if (filled + chunk.length > (length ?? limit)) {
        cleanup();
        reject(length === undefined
          ? new HttpError(413, 'too_large', `body: expected at most ${limit} bytes, received more`)
          : new HttpError(400, 'bad_length', `body: expected ${length} bytes as content-length says, received more`));
        return;
      }
      if (body) chunk.copy(body, filled);
      else chunks.push(chunk);
      filled += chunk.length;
    };
    const onEnd = () => {
      cleanup();
      if (!body) resolve(Buffer.concat(chunks, filled));
      else if (filled === length) resolve(body);
      else reject(new HttpError(400, 'bad_length', `body: expected ${length} bytes as content-length says, received ${filled}`));
    };
    // A client gone midway: its partial body is freed now, not at V8's next full collection
    // (which an idle server may not run for minutes: 80 stalled uploads held 75 MiB after closing).
    const onError = (err?: Error) => {
      cleanup();
      if (body) release(body);
      chunks.length = 0;
      reject(err ?? new HttpError(400, 'bad_length', `body: expected ${length ?? 'a whole'} body, the connection closed after ${filled} bytes`));
    };
    const onClose = () => onError();
    const cleanup = () => {
      stream.removeListener('data', onData).removeListener('end', onEnd).removeListener('error', onError).removeListener('close', onClose);
    };
    stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
