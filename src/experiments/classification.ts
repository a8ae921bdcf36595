// The classification experiment (paper section on ImageNet): classifiers over the same 1,000
// classes; for every ordered pair (A, B) a map from A's embeddings into B's, fitted on a pool of
// images disjoint from the test images (fit-pool.ts: half of one folder, or several sources with
// augmented views) or taken from the two heads alone (no images), then A's test images
// classified through B's head. Retention = mapped top-1 / B's own top-1; the median top-1 drop
// over all ordered pairs is the paper's headline number (1.9 points over 90 pairs of 10 CNNs),
// here also against the weaker of A and B, and as a curve over the number of fit images.
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import { assertInteger, assertNumber, assertOneOf, fail } from '../core/validate';
import type { EstimatorName } from '../estimators/estimator';
import { SufficientStats, type StatsPrecision } from '../engine/stats';
import { fitFromFolds, fitMap, splitOptions, type FitMapOptions } from '../estimators/fit-map';
import type { ParamValue } from '../estimators/params';
import { WeightsEstimator, type Head } from '../estimators/weights';
import { crossValidates, lambdaRule } from '../estimators/ridge';
import type { LinearMap } from '../maps/linear-map';
import { accuracy, agreement, logits, type TopK } from '../evaluate/classification';
import type { ProgressStream } from '../extract/progress';
import { MAX_VIEWS } from '../images/views';
import type { DraftOptions } from '../models/draft';
import { IMAGENET_TRAIN_IMAGES, curveSizes, fitLogTrend, nestedRows, trendAt } from './curve';
import { type PoolSource, poolRows } from './fit-pool';
import { prepareModels } from './workspace';

export interface ClassificationConfig {
  /**
   * The images to fit on: a manifest (TSV: path, label = ImageNet class index 0..999) or an
   * ImageNet-style folder with labels.tsv, or several (the fit pool). One source without
   * `testImages` is split: `fitFraction` to fit, the rest tested.
   */
  images: string | string[];
  /** The test images: when also in `images` they are split as above, else all tested (never fitted on). */
  testImages?: string;
  /** Catalogue ids, cards (.json) or ONNX files (.onnx) of classifiers. */
  models: string[];
  /** For cards and ONNX files: a preset or an embedding tensor completing them (src/models/draft.ts). */
  modelOptions?: DraftOptions;
  work: string;
  /** Fraction of the split source fitted on (default 0.5; the rest are evaluated). */
  fitFraction?: number;
  /** Estimator for the image-fitted maps (default lstsq; ridge with a prior) and its parameters (prior 'weights': the pair's heads). */
  method?: string;
  params?: Record<string, ParamValue>;
  /** Instead of method: several maps compared (names of COMPARED); the first is the one in `pairs`. */
  methods?: string[];
  /** Augmented views per fit image (src/images/views.ts; view 0 the plain image); test images are never augmented. */
  views?: number;
  /** The pool's sources whose fit images get views (default all). */
  viewsOn?: string[];
  /** Sizes (distinct fit images) of the sample-size curve; every image is always a point. */
  curve?: number[];
  /** Use at most this many images of each source (seeded choice), for quick runs. */
  limit?: number;
  seed?: number;
  from?: Record<string, string>;
  progress?: ProgressStream | null;
}

/**
 * The maps `methods` can compare: an estimator and its parameters. ridge-prior: toward the pair's
 * head-only map, weight and bias (default λ rule), so λ = ∞ is the head-only map itself.
 */
export const COMPARED: Record<string, Recipe & { method: EstimatorName }> = {
  lstsq: { method: 'lstsq' },
  ridge: { method: 'ridge' },
  'ridge-prior': { method: 'ridge', params: { prior: 'weights' } },
};

/** How a map is fitted: the estimator and its parameters. */
export interface Recipe {
  method?: string;
  params?: Record<string, ParamValue>;
}

export interface PairResult {
  source: string;
  target: string;
  /** B's head on A's test embeddings mapped by the fitted map / by the head-only (weights) map. */
  mapped: TopK;
  weights: TopK;
  /** mapped top-1 / B's own top-1. */
  retention: number;
  /** B's top-1 minus mapped top-1, in points. */
  dropPoints: number;
  weightsDropPoints: number;
  /** The weaker of A's and B's own top-1 minus mapped top-1 (a map cannot carry more than A has), in points. */
  weakerDropPoints: number;
  weightsWeakerDropPoints: number;
  /** Agreement of mapped predictions with B's own predictions on the same images. */
  agreement: number;
  /** How the fitted map's ridge lambda was chosen ('cv-top1', 'gcv', 'cv', 'fixed', ...), and its value (Infinity: the prior kept). */
  selection?: string;
  lambda?: number;
}

export interface MethodResult {
  label: string;
  method: string;
  params?: Record<string, ParamValue>;
  pairs: PairResult[];
  medianDropPoints: number;
  medianWeakerDropPoints: number;
}

/** One point of the sample-size curve: every ordered pair's maps fitted on `images` distinct fitting images. */
export interface CurvePoint {
  /** Distinct fit images, and fit rows (views included). */
  images: number;
  rows: number;
  /** Per method label: the median drops over the pairs at this size. */
  medians: Record<string, { dropPoints: number; weakerDropPoints: number }>;
  /** The first map's (the one in `pairs` of the result): median drop, and the largest drop minus the pair's head-only drop. */
  medianDropPoints: number;
  worstOverWeightsPoints: number;
  /** The head-only maps (no images: the same at every size), for comparison. */
  medianWeightsDropPoints: number;
  pairs: Pick<PairResult, 'source' | 'target' | 'dropPoints' | 'weightsDropPoints' | 'selection' | 'lambda'>[];
}

export interface CurveTrend {
  label: string;
  /** What was fitted: median drop (points, against the target) = intercept + slope * ln(images). */
  kind: 'linear in ln(images)';
  intercept: number;
  slope: number;
  r2: number;
  /** The trend at ImageNet's 1.28 M training images: an extrapolation far past the measured sizes. */
  extrapolation: { images: number; dropPoints: number };
}

export interface ClassificationResult {
  config: Omit<ClassificationConfig, 'progress'>;
  images: number;
  /** Distinct images fitted on, rows fitted on (views included), images tested. */
  fitImages: number;
  fitRows: number;
  testImages: number;
  sources: PoolSource[];
  models: { id: string; dim: number; test: TopK }[];
  /** The first method's pairs. */
  pairs: PairResult[];
  medianDropPoints: number;
  medianWeightsDropPoints: number;
  medianWeakerDropPoints: number;
  medianWeightsWeakerDropPoints: number;
  methods: MethodResult[];
  curve?: CurvePoint[];
  trends?: CurveTrend[];
}

export async function runClassification(cfg: ClassificationConfig): Promise<ClassificationResult> {
  const seed = cfg.seed ?? 0;
  const images = typeof cfg.images === 'string' ? [cfg.images] : cfg.images;
  if (!Array.isArray(images) || images.length === 0) fail(TypeError, 'images', 'a source of images or a list of them', cfg.images);
  if (cfg.testImages === undefined && images.length > 1) throw new RangeError(`testImages: expected the test set when fitting on ${images.length} sources, received none`);
  const recipes = methodRecipes(cfg);
  if (cfg.views !== undefined) assertInteger('views', cfg.views, 1, MAX_VIEWS);
  if (cfg.fitFraction !== undefined) assertNumber('fitFraction', cfg.fitFraction, 0, 1);
  if (cfg.curve !== undefined) curveSizes(cfg.curve, Infinity);
  const models = await prepareModels(cfg.models, path.join(cfg.work, 'models'), cfg.from, cfg.modelOptions);
  for (const m of models) if (!m.head) throw new RangeError(`models: '${m.id}' has no classifier head: the classification experiment needs classifiers`);
  const rows = await poolRows({
    images, testImages: cfg.testImages ?? images[0], fitFraction: cfg.fitFraction ?? 0.5, seed,
    ...(cfg.views !== undefined ? { views: cfg.views } : {}), ...(cfg.viewsOn ? { viewsOn: cfg.viewsOn } : {}), ...(cfg.limit !== undefined ? { limit: cfg.limit } : {}),
  }, models, cfg.work, cfg.progress);
  if (rows.fitItems.length < 2 || rows.testItems.length === 0) {
    throw new RangeError(`images: expected at least 2 images to fit on and 1 to test, found ${rows.fitItems.length} and ${rows.testItems.length}`);
  }

  // Logit index k is ImageNet class k + labelOffset (Coral: 1001 outputs, 0 = background).
  const labelsFor = (id: string) => {
    const offset = models.find((m) => m.id === id)!.card.card.logits?.labelOffset ?? 0;
    return Int32Array.from(rows.testItems, (it) => Number(it.label) - offset);
  };
  const head = (id: string) => models.find((m) => m.id === id)!.head!;
  const testLogits = new Map<string, Matrix>();
  for (const m of models) testLogits.set(m.id, await logits(rows.test.get(m.id)!, head(m.id)));
  const native = new Map(models.map((m) => [m.id, accuracy(testLogits.get(m.id)!, labelsFor(m.id))]));
  const pairData = (a: string, b: string): PairData => ({
    source: a, target: b, headA: head(a), headB: head(b), labels: labelsFor(b),
    fitA: rows.fit.get(a)!, fitB: rows.fit.get(b)!, fitImageOf: rows.fitImageOf, testA: rows.test.get(a)!, native: native.get(b)!, nativeLogits: testLogits.get(b)!,
  });
  const weaker = (a: string, b: string) => Math.min(native.get(a)!.top1, native.get(b)!.top1);
  const ordered = models.flatMap((a) => models.filter((b) => b !== a).map((b) => [a.id, b.id] as const));

  // Every size of the curve (or every image alone) for every pair: the sizes are nested, so one
  // pass of statistics per pair serves them all, each map fitted from the statistics so far
  // (maps whose lambda rule needs rows are fitted from each size's rows, and need no statistics).
  const nFit = rows.fitItems.length;
  const sizes = cfg.curve ? curveSizes(cfg.curve, nFit) : [nFit];
  const subsets = nestedRows(rows.fitImageOf, nFit, sizes, seed);
  const methods: MethodResult[] = recipes.map((r) => ({ ...r, pairs: [], medianDropPoints: 0, medianWeakerDropPoints: 0 }));
  const drops = sizes.map(() => methods.map(() => [] as [number, number][]));
  const firstAt = sizes.map(() => [] as CurvePoint['pairs']);
  const needStats = recipes.some((r) => !fitsFromRows(r));
  for (const [a, b] of ordered) {
    const d = pairData(a, b);
    const w = await scoreMap(await headOnlyMap(d), d);
    const stats = new SufficientStats(d.fitA.cols, d.fitB.cols, { precision: recipes[0].params?.precision as StatsPrecision | undefined });
    const added = new Uint8Array(d.fitA.rows);
    for (const [i, n] of sizes.entries()) {
      const more = subsets[i].filter((r) => !added[r]);
      more.forEach((r) => (added[r] = 1));
      if (needStats && more.length) await stats.update(d.fitA, d.fitB, { rows: more });
      for (const [k, m] of methods.entries()) {
        const map = await fitPairMap(d, m, { stats, rows: subsets[i] });
        const s = { ...(await scoreMap(map, d)), ...lambdaOf(map) };
        const weakerDrop = 100 * (weaker(a, b) - s.mapped.top1);
        drops[i][k].push([s.dropPoints, weakerDrop]);
        if (k === 0) firstAt[i].push({ source: a, target: b, dropPoints: s.dropPoints, weightsDropPoints: w.dropPoints, selection: s.selection, lambda: s.lambda });
        if (n === nFit) m.pairs.push({ source: a, target: b, ...s, weights: w.mapped, weightsDropPoints: w.dropPoints, weakerDropPoints: weakerDrop, weightsWeakerDropPoints: 100 * (weaker(a, b) - w.mapped.top1) });
      }
    }
    cfg.progress?.write(`maps ${a} -> ${b}: fitted on ${sizes.join(', ')} images\n`);
  }
  for (const m of methods) {
    m.medianDropPoints = median(m.pairs.map((p) => p.dropPoints));
    m.medianWeakerDropPoints = median(m.pairs.map((p) => p.weakerDropPoints));
  }
  const pairs = methods[0].pairs;
  const result: ClassificationResult = {
    config: { ...cfg, progress: undefined } as Omit<ClassificationConfig, 'progress'>,
    images: rows.sources.reduce((s, x) => s + x.images, 0),
    fitImages: nFit,
    fitRows: rows.fitImageOf.length,
    testImages: rows.testItems.length,
    sources: rows.sources,
    models: models.map((m) => ({ id: m.id, dim: rows.fit.get(m.id)!.cols, test: native.get(m.id)! })),
    pairs,
    medianDropPoints: methods[0].medianDropPoints,
    medianWeightsDropPoints: median(pairs.map((p) => p.weightsDropPoints)),
    medianWeakerDropPoints: methods[0].medianWeakerDropPoints,
    medianWeightsWeakerDropPoints: median(pairs.map((p) => p.weightsWeakerDropPoints)),
    methods,
  };
  if (cfg.curve) {
    result.curve = sizes.map((n, i) => ({
      images: n,
      rows: subsets[i].length,
      medians: Object.fromEntries(methods.map((m, k) => [m.label, { dropPoints: median(drops[i][k].map((x) => x[0])), weakerDropPoints: median(drops[i][k].map((x) => x[1])) }])),
      medianDropPoints: median(firstAt[i].map((p) => p.dropPoints)),
      worstOverWeightsPoints: Math.max(...firstAt[i].map((p) => p.dropPoints - p.weightsDropPoints)),
      medianWeightsDropPoints: result.medianWeightsDropPoints,
      pairs: firstAt[i],
    }));
    if (sizes.length >= 2) {
      result.trends = methods.map((m) => {
        const t = fitLogTrend(result.curve!.map((p) => ({ n: p.images, y: p.medians[m.label].dropPoints })));
        return { label: m.label, kind: 'linear in ln(images)', ...t, extrapolation: { images: IMAGENET_TRAIN_IMAGES, dropPoints: trendAt(t, IMAGENET_TRAIN_IMAGES) } };
      });
    }
  }
  return result;
}

/** The maps to fit: cfg.methods' recipes, or cfg.method with cfg.params (default lstsq, ridge with a prior). */
function methodRecipes(cfg: ClassificationConfig): (Recipe & { label: string; method: string })[] {
  if (cfg.methods === undefined) {
    const method = methodOf(cfg);
    return [{ label: cfg.params?.prior !== undefined ? `${method}-prior` : method, method, ...(cfg.params ? { params: cfg.params } : {}) }];
  }
  if (cfg.method !== undefined || cfg.params !== undefined) throw new RangeError('methods: expected either methods or method (with params), received both');
  const names = Object.keys(COMPARED);
  if (!Array.isArray(cfg.methods) || cfg.methods.length === 0) fail(TypeError, 'methods', `a list of ${names.join(', ')}`, cfg.methods);
  return cfg.methods.map((label, i) => {
    assertOneOf(`methods[${i}]`, label, names);
    return { label, ...COMPARED[label] };
  });
}

/** One ordered pair's data: A's and B's fitting rows, A's test rows, the heads, B's labels and own results. */
export interface PairData {
  source: string;
  target: string;
  fitA: Matrix;
  fitB: Matrix;
  /** The image of each fit row: a k-fold lambda rule keeps an image's views in one fold (absent: each row its own image). */
  fitImageOf?: Int32Array;
  testA: Matrix;
  headA: Head;
  headB: Head;
  /** Test labels as B's logit indices. */
  labels: Int32Array;
  /** B's own accuracy and logits on the test rows. */
  native: TopK;
  nativeLogits: Matrix;
}

/**
 * The pair's map by `cfg.method` (ridge toward the head-only map with params.prior 'weights'),
 * fitted on its fit rows, or on `subset.rows` of them, whose statistics `subset.stats` are when
 * the estimator fits from one set of statistics (ridge's k-fold lambda rules fit from the rows).
 */
export async function fitPairMap(d: PairData, cfg: Recipe = {}, subset?: { stats: SufficientStats; rows: Int32Array }): Promise<Pick<LinearMap, 'applyBatch' | 'metadata'>> {
  const params = { ...cfg.params };
  // prior 'weights' is the closed form from this pair's own heads.
  if (params.prior === 'weights') Object.assign(params, { sourceHead: d.headA, targetHead: d.headB });
  const method = methodOf(cfg);
  // Scored on the test rows: no held-out diagnostics of its own.
  const options = { method, ...params, validation: 'none', sourceModel: d.source, targetModel: d.target } as FitMapOptions;
  // A view's image stays in one fold with it (only rules that cross-validate use the groups).
  const byImage = (rows?: Int32Array) => (d.fitImageOf ? { groups: rows ? Int32Array.from(rows, (r) => d.fitImageOf![r]) : d.fitImageOf, groupedBy: 'image' } : {});
  if (!subset) return (await fitMap(d.fitA, d.fitB, { ...options, ...byImage() })).map;
  if (fitsFromRows(cfg)) return (await fitMap(d.fitA.takeRows(subset.rows), d.fitB.takeRows(subset.rows), { ...options, ...byImage(subset.rows) })).map;
  const checked = splitOptions(options);
  return (await fitFromFolds(checked.method, checked.params, { folds: [subset.stats], samples: [] }, checked.protocol)).map;
}

/** The estimator of a recipe: the one named, else lstsq, or ridge with a prior. */
function methodOf(cfg: Recipe): EstimatorName {
  return (cfg.method ?? (cfg.params?.prior !== undefined ? 'ridge' : 'lstsq')) as EstimatorName;
}

/** Whether the map is fitted from rows rather than one set of statistics: ridge with a k-fold lambda rule (a 'weights' prior brings the target head, whose rule is cv-top1). */
function fitsFromRows(cfg: Recipe): boolean {
  const params = cfg.params ?? {};
  return methodOf(cfg) === 'ridge' && crossValidates(lambdaRule({ lambda: params.lambda, targetHead: params.prior === 'weights' ? true : params.targetHead }));
}

/** How the map's ridge lambda was chosen and its value (Infinity: the prior kept), from its metadata. */
function lambdaOf(map: Pick<LinearMap, 'metadata'>): Pick<PairResult, 'selection' | 'lambda'> {
  const { selection, lambda } = map.metadata.diagnostics ?? {};
  return { ...(typeof selection === 'string' ? { selection } : {}), ...(typeof lambda === 'number' ? { lambda } : {}) };
}

/** The pair's head-only map: the closed form from A's and B's heads (no images). */
export async function headOnlyMap(d: Pick<PairData, 'headA' | 'headB'>): Promise<Pick<LinearMap, 'applyBatch'>> {
  const w = await new WeightsEstimator().fitHeads(d.headA, d.headB);
  return { applyBatch: (X) => w.transform(X) };
}

/**
 * Fits the pair's map (fitPairMap) and the head-only map, and scores both through B's head. The
 * shared core the tests plant maps in.
 */
export async function evaluatePair(d: PairData, cfg: Recipe = {}): Promise<Omit<PairResult, 'weakerDropPoints' | 'weightsWeakerDropPoints'>> {
  const weights = await scoreMap(await headOnlyMap(d), d);
  const map = await fitPairMap(d, cfg);
  return { source: d.source, target: d.target, ...(await scoreMap(map, d)), ...lambdaOf(map), weights: weights.mapped, weightsDropPoints: weights.dropPoints };
}

/** A's test rows through `map` and B's head: accuracy, retention and drop against B's own, agreement with B. */
export async function scoreMap(map: Pick<LinearMap, 'applyBatch'>, d: Pick<PairData, 'testA' | 'headB' | 'labels' | 'native' | 'nativeLogits'>) {
  const L = await logits(await map.applyBatch(d.testA), d.headB);
  const mapped = accuracy(L, d.labels);
  return {
    mapped,
    retention: d.native.top1 > 0 ? mapped.top1 / d.native.top1 : 0,
    dropPoints: 100 * (d.native.top1 - mapped.top1),
    agreement: agreement(L, d.nativeLogits),
  };
}

export function median(v: number[]): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
