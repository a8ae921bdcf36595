// The classification experiment (paper section on ImageNet): classifiers over the same 1,000
// classes; for every ordered pair (A, B) a map from A's embeddings into B's, fitted on half the
// images (or taken from the two heads alone, no images), then A's test images classified
// through B's head. Retention = mapped top-1 / B's own top-1; the median top-1 drop over
// all ordered pairs is the paper's headline number (1.9 points over 90 pairs of 10 CNNs).
import * as path from 'node:path';
import type { Matrix } from '../core/matrix';
import { imagenetDataset } from '../datasets';
import type { EstimatorName } from '../estimators/estimator';
import { fitMap, type FitMapOptions } from '../estimators/fit-map';
import type { ParamValue } from '../estimators/params';
import { WeightsEstimator, type Head } from '../estimators/weights';
import type { LinearMap } from '../maps/linear-map';
import { fail } from '../core/validate';
import { accuracy, agreement, logits, type TopK } from '../evaluate/classification';
import { makeRng, permutation, trainTestSplit } from '../evaluate/split';
import type { ProgressStream } from '../extract/progress';
import type { DraftOptions } from '../models/draft';
import { embedAll, prepareModels } from './workspace';

export interface ClassificationConfig {
  /** A manifest (TSV: path, label = ImageNet class index 0..999) or an ImageNet-style folder with labels.tsv. */
  images: string;
  /** Catalogue ids, cards (.json) or ONNX files (.onnx) of classifiers. */
  models: string[];
  /** For cards and ONNX files: a preset or an embedding tensor completing them (src/models/draft.ts). */
  modelOptions?: DraftOptions;
  work: string;
  /** Fraction of the images the maps are fitted on (the rest are evaluated). */
  fitFraction?: number;
  /** Estimator for the image-fitted maps (default lstsq; ridge with a prior) and its parameters (prior 'weights': the pair's heads). */
  method?: string;
  params?: Record<string, ParamValue>;
  /** Use at most this many images (seeded choice), for quick runs. */
  limit?: number;
  /** Sample-size curve: the maps also fitted on the first N of a seeded order of the fitting images, for each N (all of them: the main result). */
  curve?: number[];
  seed?: number;
  from?: Record<string, string>;
  progress?: ProgressStream | null;
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
  /** Agreement of mapped predictions with B's own predictions on the same images. */
  agreement: number;
  /** How the fitted map's ridge lambda was chosen ('cv-logits', 'gcv', 'cv', 'fixed'), and its value (Infinity: the prior kept). */
  selection?: string;
  lambda?: number;
}

/** One point of the sample-size curve: every ordered pair's maps fitted on `images` fitting images. */
export interface CurvePoint {
  images: number;
  medianDropPoints: number;
  /** The head-only maps (no images: the same at every size), for comparison. */
  medianWeightsDropPoints: number;
  /** The largest fitted-map drop minus the pair's head-only drop. */
  worstOverWeightsPoints: number;
  pairs: Pick<PairResult, 'source' | 'target' | 'dropPoints' | 'weightsDropPoints' | 'selection' | 'lambda'>[];
}

export interface ClassificationResult {
  config: Omit<ClassificationConfig, 'progress'>;
  images: number;
  fitImages: number;
  testImages: number;
  models: { id: string; dim: number; test: TopK }[];
  pairs: PairResult[];
  medianDropPoints: number;
  medianWeightsDropPoints: number;
  curve: CurvePoint[];
}

export async function runClassification(cfg: ClassificationConfig): Promise<ClassificationResult> {
  const seed = cfg.seed ?? 0;
  let dataset = imagenetDataset(cfg.images);
  if (cfg.limit !== undefined && cfg.limit < dataset.items.length) {
    const keep = new Set(trainTestSplit(dataset.items.length, { testFraction: cfg.limit / dataset.items.length, seed }).test);
    dataset = { ...dataset, items: dataset.items.filter((_, i) => keep.has(i)) };
  }
  const split = trainTestSplit(dataset.items.length, { testFraction: 1 - (cfg.fitFraction ?? 0.5), seed });
  const fitRows = Array.from(split.train), testRows = Array.from(split.test);
  const curve = cfg.curve ?? [];
  if (!Array.isArray(curve)) fail(TypeError, 'curve', 'an array of fitting-set sizes', curve);
  curve.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 2 || n > fitRows.length) fail(RangeError, `curve[${i}]`, `a fitting-set size: an integer in [2, ${fitRows.length}] (the fitting images)`, n);
  });
  const models = await prepareModels(cfg.models, path.join(cfg.work, 'models'), cfg.from, cfg.modelOptions);
  for (const m of models) if (!m.head) throw new RangeError(`models: '${m.id}' has no classifier head: the classification experiment needs classifiers`);
  const tag = `${path.basename(path.resolve(cfg.images))}-${dataset.items.length}`;
  const embedded = await embedAll(dataset, models, path.join(cfg.work, 'embeddings', tag), { progress: cfg.progress });
  const E = (id: string) => embedded.get(id)!.embeddings.matrix;

  // Logit index k is ImageNet class k + labelOffset (Coral: 1001 outputs, 0 = background).
  const labelsFor = (id: string) => {
    const offset = models.find((m) => m.id === id)!.card.card.logits?.labelOffset ?? 0;
    return Int32Array.from(testRows, (r) => Number(dataset.items[r].label) - offset);
  };
  const head = (id: string) => models.find((m) => m.id === id)!.head!;
  const testLogits = new Map<string, Matrix>();
  for (const m of models) testLogits.set(m.id, await logits(E(m.id).takeRows(testRows), head(m.id)));
  const result: ClassificationResult = {
    config: { ...cfg, progress: undefined } as Omit<ClassificationConfig, 'progress'>,
    images: dataset.items.length,
    fitImages: fitRows.length,
    testImages: testRows.length,
    models: models.map((m) => ({ id: m.id, dim: E(m.id).cols, test: accuracy(testLogits.get(m.id)!, labelsFor(m.id)) })),
    pairs: [],
    medianDropPoints: 0,
    medianWeightsDropPoints: 0,
    curve: [],
  };
  const allPairs = async (rows: number[]): Promise<PairResult[]> => {
    const out: PairResult[] = [];
    for (const a of models) {
      for (const b of models) {
        if (a === b) continue;
        out.push(await evaluatePair({
          source: a.id, target: b.id, headA: head(a.id), headB: head(b.id), labels: labelsFor(b.id),
          fitA: E(a.id).takeRows(rows), fitB: E(b.id).takeRows(rows), testA: E(a.id).takeRows(testRows),
          native: result.models.find((m) => m.id === b.id)!.test, nativeLogits: testLogits.get(b.id)!,
        }, cfg));
      }
    }
    return out;
  };
  result.pairs = await allPairs(fitRows);
  result.medianDropPoints = median(result.pairs.map((p) => p.dropPoints));
  result.medianWeightsDropPoints = median(result.pairs.map((p) => p.weightsDropPoints));
  // Nested subsets (the first N of one seeded order), so the curve's points differ only in N.
  const order = Array.from(permutation(fitRows.length, makeRng(seed)), (i) => fitRows[i]);
  for (const n of curve) {
    const pairs = n === fitRows.length ? result.pairs : await allPairs(order.slice(0, n));
    result.curve.push({
      images: n,
      medianDropPoints: median(pairs.map((p) => p.dropPoints)),
      medianWeightsDropPoints: result.medianWeightsDropPoints,
      worstOverWeightsPoints: Math.max(...pairs.map((p) => p.dropPoints - p.weightsDropPoints)),
      pairs: pairs.map(({ source, target, dropPoints, weightsDropPoints, selection, lambda }) => ({ source, target, dropPoints, weightsDropPoints, selection, lambda })),
    });
  }
  return result;
}

/** One ordered pair's data: A's and B's fitting rows, A's test rows, the heads, B's labels and own results. */
export interface PairData {
  source: string;
  target: string;
  fitA: Matrix;
  fitB: Matrix;
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
 * Fits the pair's map (cfg.method; ridge toward the head-only map with cfg.prior 'weights') and
 * the head-only map, and scores both through B's head. The shared core the tests plant maps in.
 */
export async function evaluatePair(d: PairData, cfg: Pick<ClassificationConfig, 'method' | 'params'> = {}): Promise<PairResult> {
  const params = { ...cfg.params };
  // prior 'weights' is the closed form from this pair's own heads.
  if (params.prior === 'weights') Object.assign(params, { sourceHead: d.headA, targetHead: d.headB });
  const method = (cfg.method ?? (params.prior !== undefined ? 'ridge' : 'lstsq')) as EstimatorName;
  // Scored on the test rows below: no held-out diagnostics of its own.
  const options = { method, ...params, validation: 'none', sourceModel: d.source, targetModel: d.target } as FitMapOptions;
  const { map } = await fitMap(d.fitA, d.fitB, options);
  const w = await new WeightsEstimator().fitHeads(d.headA, d.headB);
  const weights = await scoreMap({ applyBatch: (X) => w.transform(X) }, d);
  const { selection, lambda } = map.metadata.diagnostics;
  return {
    source: d.source, target: d.target, ...(await scoreMap(map, d)), weights: weights.mapped, weightsDropPoints: weights.dropPoints,
    ...(typeof selection === 'string' ? { selection } : {}), ...(typeof lambda === 'number' ? { lambda } : {}),
  };
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
