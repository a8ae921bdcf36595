// Statistics of paired .npy files read in row chunks: sets larger than memory fit in O(p^2)
// memory. Rows must already be paired by position (same ids in the same order).
import { assertInteger } from '../core/validate';
import type { Engine } from '../engine/engine';
import { SufficientStats } from '../engine/stats';
import { readSidecar } from '../io/embeddings';
import { openNpy } from '../io/npy';

export interface StreamOptions {
  chunkRows?: number;
  engine?: Engine;
  exactF64?: boolean;
}

export async function statsFromNpy(sourcePath: string, targetPath: string, opts: StreamOptions = {}): Promise<SufficientStats> {
  const chunk = opts.chunkRows ?? 16384;
  assertInteger('chunkRows', chunk, 1);
  assertSameIds(sourcePath, targetPath);
  const a = openNpy(sourcePath);
  const b = openNpy(targetPath);
  try {
    if (a.rows !== b.rows) {
      throw new RangeError(`target: expected ${a.rows} rows to pair with ${sourcePath}, received ${b.rows} in ${targetPath}`);
    }
    const stats = new SufficientStats(a.cols, b.cols, { engine: opts.engine, exactF64: opts.exactF64 });
    for (let r = 0; r < a.rows; r += chunk) {
      const end = Math.min(a.rows, r + chunk);
      const x = a.readRows(r, end);
      const y = b.readRows(r, end);
      await stats.update(x, y.dtype === x.dtype ? y : y.astype(x.dtype));
    }
    return stats;
  } finally {
    a.close();
    b.close();
  }
}

/** When both files have id sidecars, positional pairing is only valid if they list the same ids in order. */
function assertSameIds(a: string, b: string): void {
  const ia = readSidecar(a)?.ids, ib = readSidecar(b)?.ids;
  if (!ia || !ib) return;
  const n = Math.min(ia.length, ib.length);
  for (let i = 0; i < n; i++) {
    if (ia[i] !== ib[i]) {
      throw new RangeError(`target: streaming needs rows paired by position, but row ${i} is id '${ia[i]}' in ${a} and '${ib[i]}' in ${b}: fit without --stream to pair by id`);
    }
  }
}
