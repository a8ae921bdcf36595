// Statistics of paired .npy files read in row chunks: sets larger than memory fit in O(p^2)
// memory, dealt into the same seeded folds as an in-memory fit (so `fit --stream` gives the same
// map and cross-fit diagnostics). Rows must already be paired by position (same ids in the
// same order). Rows whose sidecar ids name views (`id#v3`) are grouped by image unless the caller
// gives its own `groups`, so a held-out fold never holds a view of an image fitted on.
import { assertInteger } from '../core/validate';
import { groupsOf } from '../evaluate/split';
import { viewGroups } from '../images/views';
import { readSidecar } from '../io/embeddings';
import { openNpy } from '../io/npy';
import type { Engine } from '../engine/engine';
import type { StatsPrecision, SufficientStats } from '../engine/stats';
import { FoldDealer, fitFromFolds, splitOptions, type FitMapOptions, type FitMapResult, type Protocol } from './fit-map';
import type { ParamValue } from './params';

export interface StreamOptions {
  chunkRows?: number;
  engine?: Engine;
  precision?: StatsPrecision;
}

/** The statistics of two paired .npy files (e.g. one shard of a larger set). */
export async function statsFromNpy(sourcePath: string, targetPath: string, opts: StreamOptions = {}): Promise<SufficientStats> {
  const protocol = { validation: 'none' as const, folds: 1, seed: 0, sampleRows: 0, scorePairs: 1, engine: opts.engine };
  const dealer = await deal(sourcePath, targetPath, { precision: opts.precision ?? 'float64' }, protocol, opts.chunkRows);
  return dealer.folds[0];
}

/** fitMap on two .npy files read `chunkRows` rows at a time. A plain split needs rows in memory: not offered. */
export async function fitMapFromNpy(sourcePath: string, targetPath: string, options: FitMapOptions, chunkRows?: number): Promise<FitMapResult> {
  const { method, params, protocol } = splitOptions(options);
  if (protocol.validation === 'split') {
    throw new RangeError("validation: a 'split' (testFraction) needs the rows in memory: stream with the default cross-fit diagnostics instead");
  }
  if (method === 'weights') throw new RangeError("method: 'weights' fits from classifier heads, not streamed pairs");
  const dealer = await deal(sourcePath, targetPath, params, protocol, chunkRows);
  return fitFromFolds(method, params, dealer, protocol);
}

async function deal(
  sourcePath: string, targetPath: string, params: Record<string, ParamValue>, protocol: Protocol, chunkRows = 16384,
): Promise<FoldDealer> {
  assertInteger('chunkRows', chunkRows, 1);
  const ids = sameIds(sourcePath, targetPath);
  const a = openNpy(sourcePath);
  const b = openNpy(targetPath);
  try {
    if (a.rows !== b.rows) {
      throw new RangeError(`target: expected ${a.rows} rows to pair with ${sourcePath}, received ${b.rows} in ${targetPath}`);
    }
    if (a.rows < 2) throw new RangeError(`source: expected at least 2 pairs to fit a map, received ${a.rows} in ${sourcePath}`);
    const byImage = protocol.groups === undefined && ids ? viewGroups(ids) : undefined;
    const groups = protocol.groups ?? byImage;
    const dealer = new FoldDealer(a.rows, a.cols, b.cols, params, byImage ? { ...protocol, groupedBy: 'image' } : protocol, groups && groupsOf('groups', groups, a.rows));
    for (let r = 0; r < a.rows; r += chunkRows) {
      const end = Math.min(a.rows, r + chunkRows);
      const x = a.readRows(r, end);
      const y = b.readRows(r, end);
      await dealer.add(x, y.dtype === x.dtype ? y : y.astype(x.dtype), r, [sourcePath, targetPath]);
    }
    return dealer;
  } finally {
    a.close();
    b.close();
  }
}

/**
 * When both files have id sidecars, positional pairing is only valid if they list the same ids in
 * order: checked, and the ids returned (undefined without both sidecars).
 */
function sameIds(a: string, b: string): string[] | undefined {
  const ia = readSidecar(a)?.ids, ib = readSidecar(b)?.ids;
  if (!ia || !ib) return undefined;
  const n = Math.min(ia.length, ib.length);
  for (let i = 0; i < n; i++) {
    if (ia[i] !== ib[i]) {
      throw new RangeError(`target: streaming needs rows paired by position, but row ${i} is id '${ia[i]}' in ${a} and '${ib[i]}' in ${b}: fit without --stream to pair by id`);
    }
  }
  return ia;
}
