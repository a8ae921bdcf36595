// A pool of decode workers. Each batch goes whole to the least busy worker with its output buffers
// (ownership transferred, so no copy in either direction). Decoding thus runs on other threads while
// the main thread sits in ONNX Runtime's (synchronous) inference call.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assertInteger } from '../core/validate';
import { sharp } from '../images/preprocess';
import type { InputSpec } from '../images/types';
import type { ViewParams } from '../images/views';
import type { DecodeReply, DecodeRequest } from './decode-worker';

export type DecodedBatch = Omit<DecodeReply, 'id'>;

interface Pending {
  resolve(r: DecodedBatch): void;
  reject(e: Error): void;
}

export class DecodePool {
  private readonly workers: { worker: Worker; pending: Map<number, Pending> }[] = [];
  private readonly inFlight = new Set<Promise<DecodedBatch>>();
  private nextId = 0;
  private closed = false;
  private terminating = false;

  constructor(size: number) {
    assertInteger('workers', size, 1, 64);
    // Loaded on the main thread first, sharp's shared libraries stay loaded while workers come and go.
    sharp();
    for (let i = 0; i < size; i++) {
      const worker = new Worker(path.join(__dirname, 'decode-worker.js'));
      const pending = new Map<number, Pending>();
      const failAll = (err: Error) => {
        for (const p of pending.values()) p.reject(err);
        pending.clear();
      };
      worker.on('message', (reply: DecodeReply & { error?: string }) => {
        const p = pending.get(reply.id);
        pending.delete(reply.id);
        if (!p) return;
        if (reply.error) p.reject(new Error(`decode worker: ${reply.error}`));
        else p.resolve({ buffers: reply.buffers, kept: reply.kept, failures: reply.failures });
      });
      worker.on('error', (err) => failAll(new Error(`decode worker failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!this.terminating) failAll(new Error(`decode worker exited unexpectedly (code ${code})`));
      });
      this.workers.push({ worker, pending });
    }
  }

  /**
   * Decodes `files` for each spec into `buffers` (one per spec, files.length images each; they are
   * transferred and come back in the result, packed: row k holds image kept[k]). Images of more
   * than `maxPixels` pixels are refused (default MAX_PIXELS). `views[i]`, when given and not null,
   * augments file i once before every spec's preprocessing.
   */
  decode(files: string[], specs: InputSpec[], buffers: ArrayBuffer[], maxPixels?: number, views?: (ViewParams | null)[]): Promise<DecodedBatch> {
    if (this.closed) return Promise.reject(new Error('decode pool: expected an open pool, received one already closed'));
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    const result = new Promise<DecodedBatch>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      const request: DecodeRequest = { id, files, specs, buffers, maxPixels, ...(views ? { views } : {}) };
      target.worker.postMessage(request, buffers);
    });
    this.inFlight.add(result);
    const forget = () => this.inFlight.delete(result);
    result.then(forget, forget);
    return result;
  }

  /** Waits for batches in flight (terminating a worker inside libvips can crash the process), then stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    this.terminating = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
