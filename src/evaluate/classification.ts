// Closed-set classification through classifier heads: top-1/top-5 of A through A's head, B
// through B's head, and A mapped into B through B's head; retention (mapped / native B) and
// agreement with B's own predictions.
import { Matrix } from '../core/matrix';
import { Engine } from '../engine/engine';
import type { Head } from '../estimators/weights';

export interface TopK {
  top1: number;
  top5: number;
}

/** Logits = E W^T + c for a head W (classes x dim). */
export async function logits(E: Matrix, head: Head, engine: Engine = Engine.get()): Promise<Matrix> {
  if (E.cols !== head.W.cols) throw new RangeError(`E: expected ${head.W.cols}-d embeddings for this head, received ${E.rows}x${E.cols}`);
  const W = head.W.dtype === E.dtype ? head.W : head.W.astype(E.dtype);
  const c = E.dtype === 'float32' ? Float32Array.from(head.c) : Float64Array.from(head.c);
  return engine.gemm(E, W, { transB: true, bias: c });
}

/** Indices of the k largest logits of each row, best first. */
export function topIndices(L: Matrix, k: number): Int32Array {
  const out = new Int32Array(L.rows * k);
  for (let i = 0; i < L.rows; i++) {
    const row = L.row(i);
    const best: number[] = [];
    for (let j = 0; j < row.length; j++) {
      if (best.length < k || row[j] > row[best[best.length - 1]]) {
        best.push(j);
        best.sort((a, b) => row[b] - row[a]);
        if (best.length > k) best.pop();
      }
    }
    out.set(best, i * k);
  }
  return out;
}

/** Top-1 and top-5 accuracy of logits against integer labels (labels < 0 are skipped). */
export function accuracy(L: Matrix, labels: Int32Array): TopK {
  const top = topIndices(L, 5);
  let n = 0, t1 = 0, t5 = 0;
  for (let i = 0; i < L.rows; i++) {
    if (labels[i] < 0) continue;
    n++;
    if (top[i * 5] === labels[i]) t1++;
    for (let r = 0; r < 5; r++) if (top[i * 5 + r] === labels[i]) t5++;
  }
  return { top1: n ? t1 / n : 0, top5: n ? t5 / n : 0 };
}

/** Fraction of rows whose top-1 agrees between two logit matrices. */
export function agreement(a: Matrix, b: Matrix): number {
  const ta = topIndices(a, 1), tb = topIndices(b, 1);
  let s = 0;
  for (let i = 0; i < ta.length; i++) if (ta[i] === tb[i]) s++;
  return ta.length ? s / ta.length : 0;
}
