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
import { WeightsEstimator } from '../estimators/weights';
import { accuracy, agreement, logits, type TopK } from '../evaluate/classification';
import { trainTestSplit } from '../evaluate/split';
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
  /** Estimator for the image-fitted maps (default lstsq; ridge for few images) and its parameters (ridge: GCV by default). */
  method?: string;
  params?: Record<string, ParamValue>;
  /** Use at most this many images (seeded choice), for quick runs. */
  limit?: number;
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
}

export async function runClassification(cfg: ClassificationConfig): Promise<ClassificationResult> {
  const seed = cfg.seed ?? 0;
  let dataset = imagenetDataset(cfg.images);
  if (cfg.limit !== undefined && cfg.limit < dataset.items.length) {
    const keep = new Set(trainTestSplit(dataset.items.length, { testFraction: cfg.limit / dataset.items.length, seed }).test);
    dataset = { ...dataset, items: dataset.items.filter((_, i) => keep.has(i)) };
  }
  const models = await prepareModels(cfg.models, path.join(cfg.work, 'models'), cfg.from, cfg.modelOptions);
  for (const m of models) if (!m.head) throw new RangeError(`models: '${m.id}' has no classifier head: the classification experiment needs classifiers`);
  const tag = `${path.basename(path.resolve(cfg.images))}-${dataset.items.length}`;
  const embedded = await embedAll(dataset, models, path.join(cfg.work, 'embeddings', tag), { progress: cfg.progress });
  const split = trainTestSplit(dataset.items.length, { testFraction: 1 - (cfg.fitFraction ?? 0.5), seed });
  const fitRows = Array.from(split.train), testRows = Array.from(split.test);
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
  };
  const method = cfg.method ?? 'lstsq';
  const params = cfg.params ?? {};
  for (const a of models) {
    for (const b of models) {
      if (a === b) continue;
      // Scored on the test images below: no held-out diagnostics of its own.
      const { map } = await fitMap(E(a.id).takeRows(fitRows), E(b.id).takeRows(fitRows), { method: method as EstimatorName, ...params, validation: 'none' } as FitMapOptions);
      const XA = E(a.id).takeRows(testRows);
      const mappedLogits = await logits(await map.applyBatch(XA), head(b.id));
      const w = await new WeightsEstimator().fitHeads(head(a.id), head(b.id));
      const weightsLogits = await logits(await w.transform(XA), head(b.id));
      const labels = labelsFor(b.id);
      const mapped = accuracy(mappedLogits, labels), weights = accuracy(weightsLogits, labels);
      const native = result.models.find((m) => m.id === b.id)!.test;
      result.pairs.push({
        source: a.id,
        target: b.id,
        mapped,
        weights,
        retention: native.top1 > 0 ? mapped.top1 / native.top1 : 0,
        dropPoints: 100 * (native.top1 - mapped.top1),
        weightsDropPoints: 100 * (native.top1 - weights.top1),
        agreement: agreement(mappedLogits, testLogits.get(b.id)!),
      });
    }
  }
  result.medianDropPoints = median(result.pairs.map((p) => p.dropPoints));
  result.medianWeightsDropPoints = median(result.pairs.map((p) => p.weightsDropPoints));
  return result;
}

export function median(v: number[]): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
