// Identification and retrieval: queries (e.g. A's embeddings mapped into B's space) against a
// gallery embedded by B itself — the model-upgrade-without-re-indexing use.
import type { Matrix } from '../core/matrix';
import { Engine } from '../engine/engine';

export interface IdentificationResult {
  queries: number;
  rank1: number;
  rank5: number;
  /** cmc[r] = fraction of queries whose identity appears within the first r+1 gallery rows. */
  cmc: number[];
  /** recall@k: fraction of a query's relevant gallery rows found among its k best. */
  recallAt: Record<string, number>;
}

export async function identify(
  queries: Matrix, queryLabels: readonly string[], gallery: Matrix, galleryLabels: readonly string[],
  opts: { maxRank?: number; engine?: Engine } = {},
): Promise<IdentificationResult> {
  if (queries.rows !== queryLabels.length) throw new RangeError(`queryLabels: expected ${queries.rows} labels, received ${queryLabels.length}`);
  if (gallery.rows !== galleryLabels.length) throw new RangeError(`galleryLabels: expected ${gallery.rows} labels, received ${galleryLabels.length}`);
  const k = Math.min(opts.maxRank ?? 20, gallery.rows);
  const engine = opts.engine ?? Engine.get();
  const g = gallery.dtype === queries.dtype ? gallery : gallery.astype(queries.dtype);
  const { indices } = await engine.cosineTopK(queries, g, { k });
  const relevant = new Map<string, number>();
  for (const l of galleryLabels) relevant.set(l, (relevant.get(l) ?? 0) + 1);
  const cmc = new Array<number>(k).fill(0);
  const recallK = [1, 5, 10].filter((r) => r <= k);
  const recall: Record<string, number> = Object.fromEntries(recallK.map((r) => [`@${r}`, 0]));
  let counted = 0;
  for (let i = 0; i < queries.rows; i++) {
    const total = relevant.get(queryLabels[i]) ?? 0;
    if (total === 0) continue; // identity absent from the gallery: not an identification query
    counted++;
    let first = -1, hits = 0;
    for (let r = 0; r < k; r++) {
      if (galleryLabels[indices[i * k + r]] === queryLabels[i]) {
        if (first < 0) first = r;
        hits++;
      }
      if (recallK.includes(r + 1)) recall[`@${r + 1}`] += hits / total;
    }
    if (first >= 0) for (let r = first; r < k; r++) cmc[r]++;
  }
  const norm = (v: number) => (counted ? v / counted : 0);
  return {
    queries: counted,
    rank1: norm(cmc[0] ?? 0),
    rank5: norm(cmc[Math.min(4, k - 1)] ?? 0),
    cmc: cmc.map(norm),
    recallAt: Object.fromEntries(Object.entries(recall).map(([key, v]) => [key, norm(v)])),
  };
}
