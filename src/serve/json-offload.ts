// The main thread's side of json-worker.ts: one worker, started on the first large JSON body,
// taking jobs in order. Small bodies never come here (a thread hop costs more than their parse).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { type BodyForm, HttpError, type Rows, type Shape } from './codec';
import type { JsonJob, JsonReply } from './json-worker';

type Job = JsonJob extends infer J ? (J extends JsonJob ? Omit<J, 'id'> : never) : never;

export class JsonOffload {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, (reply: JsonReply) => void>();
  private nextId = 0;

  /** Parses and checks a JSON body (its bytes are handed over: do not use them afterwards). */
  async decode(body: Buffer, shape: Shape): Promise<Rows> {
    // A slice of a shared buffer cannot be transferred: copy it into its own.
    const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : Buffer.from(body);
    const reply = await this.run({ op: 'decode', body: own, shape }, [own.buffer as ArrayBuffer]);
    return reply as Rows;
  }

  /** Mapped rows as a JSON response body. */
  async encode(form: BodyForm, y: Float32Array, rows: number, q: number): Promise<Buffer> {
    const reply = await this.run({ op: 'encode', form, y, rows, q }, []);
    const { text } = reply as { text: Uint8Array };
    return Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private run(job: Job, transfer: ArrayBuffer[]): Promise<JsonReply> {
    const id = this.nextId++;
    return new Promise<JsonReply>((resolve, reject) => {
      this.pending.set(id, (reply) => {
        if ('error' in reply) reject(new HttpError(reply.error.statusCode, reply.error.code, reply.error.message));
        else resolve(reply);
      });
      this.start().postMessage({ ...job, id }, transfer);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(path.join(__dirname, 'json-worker.js'));
    worker.unref();
    worker.on('message', (reply: JsonReply) => {
      const done = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      done?.(reply);
    });
    const failAll = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const done of this.pending.values()) done({ id: -1, error: { statusCode: 500, code: 'internal', message: `internal error: JSON worker ${why}` } });
      this.pending.clear();
    };
    worker.on('error', (err) => failAll(`failed: ${err.message}`));
    worker.on('exit', (code) => failAll(`exited (code ${code})`));
    this.worker = worker;
    return worker;
  }
}
