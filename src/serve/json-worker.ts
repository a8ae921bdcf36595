// JSON off the event loop (worker_threads): a large JSON body parsed and checked into float32 rows,
// or mapped rows printed as JSON, on this thread, so a 14 MB batch does not stall other requests.
// Errors come back as {statusCode, code, message} to be rethrown as the same HttpError.
import * as os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { type BodyForm, HttpError, type Shape, decodeJson, encodeRows, parseJson } from './codec';

export type JsonJob =
  | { id: number; op: 'decode'; body: Uint8Array; shape: Shape }
  | { id: number; op: 'encode'; form: BodyForm; y: Float32Array; rows: number; q: number };

export type JsonReply =
  | { id: number; form: BodyForm; x: Float32Array; rows: number }
  | { id: number; text: Uint8Array }
  | { id: number; error: { statusCode: number; code: string; message: string } };

// The lowest CPU priority for this thread (Linux: pid 0 is the calling thread): on busy cores the
// event loop answering small requests goes first, and a large batch takes longer instead.
try {
  os.setPriority(0, 19);
} catch {}

parentPort!.on('message', (job: JsonJob) => {
  try {
    if (job.op === 'decode') {
      const rows = decodeJson(parseJson(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength).toString('utf8')), job.shape);
      parentPort!.postMessage({ id: job.id, ...rows } satisfies JsonReply, [rows.x.buffer as ArrayBuffer]);
    } else {
      // TextEncoder's array owns its buffer (a small Buffer.from may share Node's pool): safe to transfer.
      const text = new TextEncoder().encode(encodeRows(job.form, job.y, job.rows, job.q) as string);
      parentPort!.postMessage({ id: job.id, text } satisfies JsonReply, [text.buffer as ArrayBuffer]);
    }
  } catch (err) {
    const e = err instanceof HttpError ? err : new HttpError(500, 'internal', `internal error: ${(err as Error).message}`);
    parentPort!.postMessage({ id: job.id, error: { statusCode: e.statusCode, code: e.code, message: e.message } } satisfies JsonReply);
  }
});
