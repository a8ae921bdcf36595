// Micro-batching for one map: rows submitted by concurrent callers are concatenated and mapped
// by one GEMM, so the weights are streamed from memory once per batch instead of once per
// request. There is no waiting window: a batch starts at the end of the current event-loop turn
// (setImmediate), taking whatever arrived in that turn, and everything that arrives while a
// GEMM runs on the thread pool is served together by the next one. At low load a request is
// therefore a batch of one, and a small batch runs on the event-loop thread (microseconds, no
// thread-pool round trip).
import { Matrix } from '../core/matrix';
import { assertInteger, fail } from '../core/validate';
import type { LinearMap } from '../maps/linear-map';

export interface BatcherOptions {
  /** Most rows one GEMM takes; the rest of the queue waits for the next (a larger single request runs alone). Default 8192. */
  maxRows?: number;
  /** Batches of at most this many multiply-adds (rows·p·q) run on the event-loop thread; larger ones on the thread pool. Default 2^19 (two 512→512 rows). */
  syncWork?: number;
  /** Called with the size of every GEMM, before it runs. */
  onBatch?: (rows: number, requests: number) => void;
}

interface Job {
  x: Float32Array;
  rows: number;
  resolve: (y: Float32Array) => void;
  reject: (err: unknown) => void;
}

export class MicroBatcher {
  readonly #map: LinearMap;
  readonly #maxRows: number;
  readonly #syncWork: number;
  readonly #onBatch: BatcherOptions['onBatch'];
  #queue: Job[] = [];
  // A flush is scheduled or a GEMM is running: new jobs just queue.
  #busy = false;

  constructor(map: LinearMap, opts: BatcherOptions = {}) {
    this.#map = map;
    this.#maxRows = opts.maxRows ?? 8192;
    this.#syncWork = opts.syncWork ?? 2 ** 19;
    assertInteger('maxRows', this.#maxRows, 1);
    assertInteger('syncWork', this.#syncWork, 0);
    this.#onBatch = opts.onBatch;
  }

  /** Jobs waiting for a GEMM. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Maps `rows` float32 rows of the map's source dimension laid end to end in `x`; resolves to
   * rows x q float32 values (a view into the batch's result). `x` must not change until then.
   */
  submit(x: Float32Array, rows: number): Promise<Float32Array> {
    if (!(x instanceof Float32Array)) fail(TypeError, 'x', 'a Float32Array', x);
    assertInteger('rows', rows, 1);
    const p = this.#map.p;
    if (x.length !== rows * p) throw new RangeError(`x: expected rows*p = ${rows}*${p} = ${rows * p} values, received ${x.length}`);
    return new Promise((resolve, reject) => {
      this.#queue.push({ x, rows, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    const jobs = this.#take();
    const p = this.#map.p, q = this.#map.q;
    const rows = jobs.reduce((s, j) => s + j.rows, 0);
    let X: Matrix<'float32'>;
    if (jobs.length === 1) {
      X = new Matrix(jobs[0].x, rows, p);
    } else {
      X = Matrix.zeros(rows, p, 'float32');
      let off = 0;
      for (const j of jobs) {
        X.data.set(j.x, off);
        off += j.x.length;
      }
    }
    this.#onBatch?.(rows, jobs.length);
    const deliver = (Y: Matrix<'float32'>) => {
      let off = 0;
      for (const j of jobs) {
        j.resolve(Y.data.subarray(off * q, (off + j.rows) * q));
        off += j.rows;
      }
    };
    const failAll = (err: unknown) => jobs.forEach((j) => j.reject(err));
    if (rows * p * q <= this.#syncWork) {
      try {
        deliver(this.#map.applyBatchSync(X));
      } catch (err) {
        failAll(err);
      }
      this.#next();
    } else {
      this.#map.applyBatch(X).then(deliver, failAll).finally(this.#next);
    }
  };

  readonly #next = (): void => {
    if (this.#queue.length > 0) setImmediate(this.#flush);
    else this.#busy = false;
  };

  /** The longest prefix of the queue within maxRows (at least one job). */
  #take(): Job[] {
    let n = 0, rows = 0;
    while (n < this.#queue.length && (n === 0 || rows + this.#queue[n].rows <= this.#maxRows)) rows += this.#queue[n++].rows;
    return this.#queue.splice(0, n);
  }
}
