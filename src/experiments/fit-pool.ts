// The classification experiment's rows: a fit pool of one or more labelled image sources (the fit
// images of some with augmented views) and a test set. The test source is split (seeded) when it is
// in the pool too, else used whole; views are only ever embedded for fit images. Disjointness is
// checked, not assumed: every row's id is read back from the sidecars and no test image may appear
// among the fit rows, as itself or as a view. Embeddings come from the workspace's cache.
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import { imagenetDataset, type Dataset, type ImageItem } from '../datasets';
import { trainTestSplit } from '../evaluate/split';
import { realPathOf } from '../io/paths';
import type { ProgressStream } from '../extract/progress';
import { embedAll, embedViews, expectIds, type WorkModel } from './workspace';

export interface PoolConfig {
  /** The fit pool: folders or manifests of labelled images. */
  images: string[];
  /** The test images; when also in `images`, split: `fitFraction` of them join the pool, the rest are tested. */
  testImages: string;
  fitFraction: number;
  /** Views per fit image (1 or absent: the plain image only). */
  views?: number;
  /** The sources whose fit images get views (default: every source of the pool). */
  viewsOn?: string[];
  /** At most this many images of each source (seeded choice). */
  limit?: number;
  seed: number;
}

export interface PoolSource {
  source: string;
  images: number;
  fitImages: number;
  testImages: number;
  /** Rows per fit image. */
  views: number;
}

export interface PoolRows {
  /** Per model id: the fit rows (views included, image by image) and the test rows (plain images). */
  fit: Map<string, Matrix>;
  test: Map<string, Matrix>;
  /** The distinct fit images, and for each fit row the index of its image there. */
  fitItems: ImageItem[];
  fitImageOf: Int32Array;
  testItems: ImageItem[];
  sources: PoolSource[];
}

/** Embeds (or reads from `work`'s cache) every source with every model and assembles the rows; see the file comment. */
export async function poolRows(cfg: PoolConfig, models: WorkModel[], work: string, progress?: ProgressStream | null): Promise<PoolRows> {
  const pool = cfg.images.map((p) => path.resolve(p));
  const twice = pool.find((p, i) => pool.indexOf(p) !== i);
  if (twice) throw new RangeError(`images: expected distinct sources, received ${twice} twice`);
  const testAt = path.resolve(cfg.testImages);
  const viewsOn = (cfg.viewsOn ?? cfg.images).map((p) => path.resolve(p));
  const stray = viewsOn.find((p) => !pool.includes(p));
  if (stray) throw new RangeError(`viewsOn: expected sources of the fit pool (${cfg.images.join(', ')}), received ${stray}`);
  const views = cfg.views ?? 1;

  // Which images each source gives the fit pool and the test set, checked before anything is embedded.
  const plans = (pool.includes(testAt) ? pool : [...pool, testAt]).map((dir) => {
    const dataset = limited(imagenetDataset(dir), cfg.limit, cfg.seed);
    const n = dataset.items.length;
    const all = Array.from({ length: n }, (_, i) => i);
    const split = dir === testAt && pool.includes(dir) ? trainTestSplit(n, { testFraction: 1 - cfg.fitFraction, seed: cfg.seed }) : undefined;
    const fit = split ? Array.from(split.train) : dir === testAt ? [] : all;
    const test = split ? Array.from(split.test) : dir === testAt ? all : [];
    return { dir, dataset, fit, test, k: views > 1 && viewsOn.includes(dir) && fit.length > 0 ? views : 1 };
  });
  const fitItems = plans.flatMap((p) => p.fit.map((i) => p.dataset.items[i]));
  const testItems = plans.flatMap((p) => p.test.map((i) => p.dataset.items[i]));
  assertDisjoint(fitItems, testItems);

  const imageOf: number[] = [];
  let base = 0; // index in fitItems of this source's first fit image
  const fitParts = new Map<string, Matrix[]>(models.map((m) => [m.id, []]));
  const testParts = new Map<string, Matrix[]>(models.map((m) => [m.id, []]));
  for (const { dir, dataset, fit, test, k } of plans) {
    const plain = await embedAll(dataset, models, path.join(work, 'embeddings', `${path.basename(dir)}-${dataset.items.length}`), { progress });
    for (const m of models) {
      const e = plain.get(m.id)!.embeddings;
      expectIds(e.ids, test.map((i) => dataset.items[i].id), test, `${m.id} on ${dir}`);
      testParts.get(m.id)!.push(e.matrix.takeRows(test));
    }
    if (fit.length === 0) continue;
    const items = fit.map((i) => dataset.items[i]);
    if (k === 1) {
      for (const m of models) {
        const e = plain.get(m.id)!.embeddings;
        expectIds(e.ids, items.map((it) => it.id), fit, `${m.id} on ${dir}`);
        fitParts.get(m.id)!.push(e.matrix.takeRows(fit));
      }
      imageOf.push(...items.map((_, j) => base + j));
      base += items.length;
      continue;
    }
    // Views of the fit images only: the cache is keyed by which images they are.
    const viewed = await embedViews({ ...dataset, items }, models, path.join(work, 'embeddings'), path.basename(dir), { count: k, seed: cfg.seed }, progress);
    for (const m of models) fitParts.get(m.id)!.push(viewed.get(m.id)!);
    imageOf.push(...Array.from({ length: items.length * k }, (_, r) => base + Math.floor(r / k)));
    base += items.length;
  }
  const sources = plans.map((p) => ({ source: p.dir, images: p.dataset.items.length, fitImages: p.fit.length, testImages: p.test.length, views: p.k }));
  return {
    fit: new Map([...fitParts].map(([id, parts]) => [id, Matrix.stack(parts)])),
    test: new Map([...testParts].map(([id, parts]) => [id, Matrix.stack(parts)])),
    fitItems,
    fitImageOf: Int32Array.from(imageOf),
    testItems,
    sources,
  };
}

/** Throws naming the first image that is both fitted on and tested (by its file, links resolved). */
export function assertDisjoint(fit: readonly { path: string }[], test: readonly { id: string; path: string }[]): void {
  const fitted = new Set(fit.map((it) => realPathOf(it.path)));
  const both = test.find((it) => fitted.has(realPathOf(it.path)));
  if (both) throw new Error(`test images: expected none among the fit rows, found ${both.id} (${both.path}) in both`);
}

/** At most `limit` items (a seeded choice, dataset order kept). */
function limited(dataset: Dataset, limit: number | undefined, seed: number): Dataset {
  if (limit === undefined || limit >= dataset.items.length) return dataset;
  const keep = new Set(trainTestSplit(dataset.items.length, { testFraction: limit / dataset.items.length, seed }).test);
  return { ...dataset, items: dataset.items.filter((_, i) => keep.has(i)) };
}
