// The face experiment (paper section on LFW): every ordered pair of face networks, a map fitted
// on identities disjoint from the evaluated pairs, and LFW's verification protocol for the
// native, cross-model (A mapped into B against B) and both-mapped conditions; identification of
// mapped probes against a gallery embedded by B; accuracy against the number of fitting pairs
// and against the rank of the map. Faces are aligned first (src/faces) unless `align` is false;
// each network's window of the aligned face is chosen on the fitting pool (face-crops.ts), and
// ridge's penalty may be chosen on held-out identities of the fitting set (lambda 'task'). With
// views, each fitting image is embedded as K augmentations of its aligned face (src/images/views.ts):
// a view is applied to the shared aligned canvas, before each network's own window, resize and
// normalisation, so every network sees the same pixels; the evaluated images are never augmented.
import * as path from 'node:path';
import type { Matrix } from '../core/matrix';
import { fail } from '../core/validate';
import { lfwDataset, type Dataset, type LfwPair } from '../datasets';
import type { EstimatorName } from '../estimators/estimator';
import { fitMap, type FitMapOptions } from '../estimators/fit-map';
import type { ParamValue } from '../estimators/params';
import { lambdaByVerification, type TaskLambdaPoint } from '../estimators/ridge-task';
import { identitiesWithPairs } from '../evaluate/identity-pairs';
import { identify, type IdentificationResult } from '../evaluate/identification';
import { makeRng, permutation } from '../evaluate/split';
import { cosine, evaluateVerification, type VerificationResult } from '../evaluate/verification';
import { alignImages, type AlignSummary } from '../faces/stage';
import { checkViews } from '../images/views';
import type { LinearMap } from '../maps/linear-map';
import { embedAll, embedViews, prepareModels, type WorkModel } from './workspace';
import { chooseCrops, fittingPool, windowInput, type AlignedCrop, type CropChoice } from './face-crops';
import type { ProgressStream } from '../extract/progress';
import type { DraftOptions } from '../models/draft';

export interface FacesConfig {
  /** LFW folder (pairs.txt + images). */
  lfw: string;
  /** Catalogue ids, cards (.json) or ONNX files (.onnx). */
  models: string[];
  /** For cards and ONNX files: a preset or an embedding tensor completing them (src/models/draft.ts). */
  modelOptions?: DraftOptions;
  /** The maps' estimator and its parameters (default ridge with the GCV penalty). */
  method?: string;
  params?: Record<string, ParamValue>;
  /** Work folder: imported models and embeddings (reused across runs). */
  work: string;
  /** Images of identities outside every pair used to fit the maps. */
  fitImages: number;
  /** Detect and align the faces (default true); false: the centred crop below. */
  align?: boolean;
  /** Alignment cache (default <work>/align). */
  alignCache?: string;
  /**
   * Without alignment: centred crop (fraction of each side) applied before each network's own resize. LFW's
   * 250x250 photos are not aligned and the face fills about the middle half: 0.55 (default)
   * puts it where the networks saw faces in training (measured on the demo pairs: faceres
   * 90.0 -> 98.1%, mobileface 70.6 -> 81.9%, faceapi-resnet 56.3 -> 91.9% against the whole photo).
   * Overrides the cards' crops; without it a card's own crop is kept.
   */
  crop?: number;
  /** With alignment: each network's crop of the aligned canvas (default: the card's own crop, else ALIGNED_CROP, else 0.5 centred: ArcFace's). */
  alignedCrop?: Record<string, AlignedCrop>;
  /** With alignment: choose each network's window (and channel order) on the fitting pool first (face-crops.ts); alignedCrop still wins. */
  chooseCrops?: boolean;
  /** Rows per fitting image: the plain image and views - 1 augmentations, seeded by `seed` (default 1: the plain image only). */
  views?: number;
  /** Folds of pairs.txt to evaluate (1-based), default all. */
  folds?: number[];
  seed?: number;
  /** Points of the accuracy-against-pairs curve (capped at fitImages). */
  pairCurve?: number[];
  /** Points of the accuracy-against-rank curve (capped at the dimensions). */
  rankCurve?: number[];
  /** The ordered pair (model ids) of both curves, e.g. to compare runs (default: the pair with the smallest penalty). */
  curvePair?: { source: string; target: string };
  from?: Record<string, string>;
  progress?: ProgressStream | null;
}

export interface CrossResult {
  source: string;
  target: string;
  /** The map's ridge lambda, for estimators that have one, and the rule that chose it ('fixed', 'gcv', 'cv', 'task'). */
  lambda?: number;
  lambdaRule?: string;
  /** lambda 'task': GCV's choice on the same fitting set, and held-out verification by lambda. */
  gcvLambda?: number;
  lambdaCurve?: TaskLambdaPoint[];
  /** B vs B, A mapped into B against B, both sides mapped. */
  native: VerificationResult;
  cross: VerificationResult;
  bothMapped: VerificationResult;
  /**
   * A bound, not a result: A→B vs B with a map (ridge, GCV) fitted on the evaluated images
   * themselves. What a linear map can do at best here: a penalty left there is not for want of
   * fitting data.
   */
  fittedOnTest: number;
  /** native.accuracy - cross.accuracy, in points (100 = all). */
  penaltyPoints: number;
  identification: { native: IdentificationResult; mapped: IdentificationResult };
}

export interface FacesResult {
  config: Omit<FacesConfig, 'progress'>;
  pairs: number;
  /** Distinct fitting images, rows per image (1: the plain images), and fitting rows (their product). */
  fitPairs: number;
  views: number;
  fitRows: number;
  models: { id: string; dim: number; verification: VerificationResult }[];
  /** With alignment: its counts; images without a usable face were embedded from a centred crop. */
  alignment?: Omit<AlignSummary, 'cache' | 'reports'> & { reports: { file: string; reason: string }[] };
  crosses: CrossResult[];
  /** With chooseCrops: the windows chosen on the fitting pool and the evidence. */
  crops?: CropChoice;
  /** The windows and channel orders used, by network. */
  windows?: Record<string, Required<AlignedCrop>>;
  /** For the best pair (or curvePair): cross accuracy against the number of distinct fitting images, each with its views (with each map's lambda and its rule), and against rank. */
  curves: { source: string; target: string; pairs: [number, number][]; pairsLambda: { n: number; lambda?: number; rule?: string }[]; rank: [number, number][] };
}

/**
 * Windows of the aligned canvas by network, chosen by `embmap experiment faces --choose-crops`
 * (face-crops.ts, CROP_GRID) on LFW's fitting pool: the 133 images of the 52 people in no pair of
 * pairs.txt with two or more images (140 matched, 8,638 mismatched pairs), never on View 2's
 * test pairs. Balanced accuracy there, the chosen window against ArcFace's middle half (0.5
 * centred): faceres 97.8 against 97.3%, faceres-deep 92.0 against 91.4% (both within the pool's
 * noise: 140 matched pairs), mobileface the middle half itself (89.2%), faceapi-resnet 98.9%
 * with a tighter window 8% lower against 96.7% at the old window (0.5, 8% lower) and 82.2% at ArcFace's
 * (dlib's chips are tight and sit lower on the face).
 * docs/RESULTS.md has the evidence. Channel orders are the catalogue's (BGR for the HSE
 * networks, chosen on the same pool).
 */
export const ALIGNED_CROP: Record<string, AlignedCrop> = {
  faceres: { crop: 0.58 },
  'faceres-deep': { crop: 0.66 },
  mobileface: { crop: 0.5 },
  'faceapi-resnet': { crop: 0.36, centre: [0.5, 0.58] },
};

/** Identity folds of lambda 'task' (each needs an identity with two or more images). */
const TASK_FOLDS = 5;

export async function runFaces(cfg: FacesConfig): Promise<FacesResult> {
  const seed = cfg.seed ?? 0;
  const views = checkViews('views', { count: cfg.views ?? 1, seed }).count;
  const all = lfwDataset(cfg.lfw);
  const folds = cfg.folds ?? [...new Set(all.pairs!.map((p) => p.fold))];
  // Each fold's threshold is learnt on the others: one fold would leave nothing to learn it on.
  if (folds.length < 2) throw new RangeError(`folds: expected at least 2 folds of pairs.txt (each fold's threshold is learnt on the others), received ${folds.length} (${folds.join(', ') || 'none'})`);
  const pairs = all.pairs!.filter((p) => folds.includes(p.fold));
  // Maps are fitted on people who appear in no pair at all, so no evaluated identity is seen.
  if (cfg.chooseCrops && !(cfg.align ?? true)) throw new RangeError('chooseCrops: chooses windows of the aligned face, so it needs align (received align false)');
  const pool = fittingPool(all);
  const order = permutation(pool.length, makeRng(seed));
  const fitItems = Array.from(order.subarray(0, Math.min(cfg.fitImages, pool.length)), (i) => pool[i]);
  const evalIds = new Set(pairs.flatMap((p) => [p.a, p.b]));
  const fitIds = new Set(fitItems.map((i) => i.id));
  const dataset: Dataset = { ...all, items: all.items.filter((i) => evalIds.has(i.id) || fitIds.has(i.id)), pairs };
  const models = await prepareModels(cfg.models, `${cfg.work}/models`, cfg.from, cfg.modelOptions);
  if (cfg.curvePair) {
    const { source, target } = cfg.curvePair, ids = models.map((m) => m.id);
    if (source === target || !ids.includes(source) || !ids.includes(target)) fail(RangeError, 'curvePair', `two distinct model ids of ${ids.join(', ')}`, `${source} -> ${target}`);
  }
  let embedDir: string, embedSet = dataset, alignment: FacesResult['alignment'], crops: CropChoice | undefined;
  if (cfg.align ?? true) {
    // Every image is embedded, so one without a usable face gets the centred crop (counted, listed).
    const { images, summary } = await alignImages(dataset.items.map((i) => i.path), { cache: cfg.alignCache ?? `${cfg.work}/align`, fallback: 'centre', progress: cfg.progress });
    const unreadable = summary.reports.find((r) => !images[r.index].crop);
    if (unreadable) throw new Error(`images: ${unreadable.file}: ${unreadable.reason}; the experiment needs every image`);
    const { cache, reports, ...counts } = summary;
    alignment = { ...counts, reports: reports.map((r) => ({ file: r.file, reason: r.reason })) };
    embedSet = { ...dataset, items: dataset.items.map((it, i) => ({ ...it, path: images[i].crop! })) };
    const start = (m: WorkModel): AlignedCrop => {
      const own = m.card.card.input.crop !== undefined ? { crop: m.card.card.input.crop, centre: m.card.card.input.cropCentre } : undefined;
      return own ?? ALIGNED_CROP[m.id] ?? { crop: 0.5 };
    };
    const full = (m: WorkModel, w: AlignedCrop) => {
      const input = windowInput(m.card.card.input, w);
      return { crop: input.crop!, centre: input.cropCentre!, channels: input.channels };
    };
    if (cfg.chooseCrops) {
      crops = await chooseCrops(embedSet, models, { dir: `${cfg.work}/embeddings/crops-${path.basename(cache)}`, start: (m) => full(m, start(m)) });
    }
    for (const m of models) m.card.card.input = windowInput(m.card.card.input, cfg.alignedCrop?.[m.id] ?? crops?.windows[m.id] ?? start(m));
    embedDir = `lfw-${dataset.items.length}-aligned-${path.basename(cache)}`;
  } else {
    for (const m of models) m.card.card.input.crop = cfg.crop ?? m.card.card.input.crop ?? 0.55;
    embedDir = `lfw-${dataset.items.length}-unaligned`;
  }
  const embedded = await embedAll(embedSet, models, `${cfg.work}/embeddings/${embedDir}`, { progress: cfg.progress });
  const row = new Map(dataset.items.map((it, i) => [it.id, i]));
  // In the seeded random order, so that the first n images of the pairs curve are a random sample.
  const fitRows = fitItems.map((it) => row.get(it.id)!);
  const evalRows = dataset.items.flatMap((it, i) => (evalIds.has(it.id) ? [i] : []));
  const E = (m: WorkModel) => embedded.get(m.id)!.embeddings.matrix;
  // The fitting rows, image by image (each image's views together, its plain view first): only fitting images get views.
  const viewed = views > 1 ? await embedViews({ ...embedSet, items: fitRows.map((r) => embedSet.items[r]), pairs: [] }, models, `${cfg.work}/embeddings`, embedDir, { count: views, seed }, cfg.progress) : undefined;
  const fitting = new Map(models.map((m) => [m.id, viewed?.get(m.id) ?? E(m).takeRows(fitRows)]));
  const fitLabels = fitItems.flatMap((it) => Array<string>(views).fill(it.label!));
  const imageOf = Int32Array.from(fitLabels, (_, r) => Math.floor(r / views));
  const method = cfg.method ?? 'ridge';
  const params = cfg.params ?? (method === 'ridge' ? { lambda: 'gcv' as const } : {});
  const labels = dataset.items.map((i) => i.label!);

  const verify = (left: Matrix, right: Matrix) =>
    evaluateVerification(pairs.map((p: LfwPair) => ({ score: cosine(left.row(row.get(p.a)!), right.row(row.get(p.b)!)), same: p.same, fold: p.fold })));

  const result: FacesResult = {
    config: { ...cfg, method, params, progress: undefined } as Omit<FacesConfig, 'progress'>,
    pairs: pairs.length,
    fitPairs: fitItems.length,
    views,
    fitRows: fitLabels.length,
    models: models.map((m) => ({ id: m.id, dim: E(m).cols, verification: verify(E(m), E(m)) })),
    ...(alignment ? { alignment } : {}),
    ...(crops ? { crops } : {}),
    ...(alignment ? { windows: Object.fromEntries(models.map((m) => { const i = m.card.card.input; return [m.id, { crop: i.crop!, centre: i.cropCentre!, channels: i.channels }]; })) } : {}),
    crosses: [],
    curves: { source: '', target: '', pairs: [], pairsLambda: [], rank: [] },
  };
  // Rank-k maps reuse the ridge penalty the full map of the same pair chose (none for unpenalised estimators).
  // The experiment scores its maps itself (verification on held-out identities): no diagnostics.
  // lambda 'task': chosen first on held-out identities of these rows (ridge-task.ts), then fitted as a fixed lambda.
  // Too few identities with two images among the images (the curve's first sizes) for 'task': GCV there, and the curve says so.
  // 'task' keeps an image's views in its identity's fold and pairs only plain images when holding them out.
  const task = method === 'ridge' && params.lambda === 'task';
  const fitPair = async (a: WorkModel, b: WorkModel, images: number, low?: { rank: number; lambda?: number }, curve = false): Promise<{ map: LinearMap; task?: Awaited<ReturnType<typeof lambdaByVerification>> }> => {
    const rows = Array.from({ length: images * views }, (_, r) => r);
    const X = fitting.get(a.id)!.takeRows(rows), Y = fitting.get(b.id)!.takeRows(rows), rowLabels = fitLabels.slice(0, rows.length);
    const byTask = task && !low && !(curve && identitiesWithPairs(fitItems.slice(0, images).map((it) => it.label!)) < TASK_FOLDS);
    const chosen = byTask ? await lambdaByVerification(X, Y, rowLabels, { seed, folds: TASK_FOLDS, imageOf: imageOf.subarray(0, rows.length) }) : undefined;
    const fallback = task && !byTask ? { lambda: 'gcv' } : {};
    const estimator = low === undefined ? { method: method as EstimatorName, ...params, ...fallback, ...(chosen ? { lambda: chosen.lambda } : {}) } : { method: 'lowrank' as const, ...low };
    const options = { ...estimator, sourceModel: a.id, targetModel: b.id, validation: 'none' } as FitMapOptions;
    return { map: (await fitMap(X, Y, options)).map, ...(chosen ? { task: chosen } : {}) };
  };
  const lambdaOf = (fit: Awaited<ReturnType<typeof fitPair>>) => {
    const d = fit.map.metadata.diagnostics;
    if (d.lambda === undefined) return {};
    return { lambda: Number(d.lambda), lambdaRule: fit.task ? 'task' : String(d.selection ?? 'fixed') };
  };
  for (const a of models) {
    for (const b of models) {
      if (a === b) continue;
      const fit = await fitPair(a, b, fitItems.length);
      const map = fit.map;
      const mapped = await map.applyBatch(E(a));
      const native = result.models.find((m) => m.id === b.id)!.verification;
      const cross = verify(mapped, E(b));
      result.crosses.push({
        source: a.id,
        target: b.id,
        ...lambdaOf(fit),
        ...(fit.task ? { gcvLambda: fit.task.gcvLambda, lambdaCurve: fit.task.curve } : {}),
        native,
        cross,
        bothMapped: verify(mapped, mapped),
        fittedOnTest: verify(await (await fitMap(E(a).takeRows(evalRows), E(b).takeRows(evalRows), { method: 'ridge', lambda: 'gcv', validation: 'none' } as FitMapOptions)).map.applyBatch(E(a)), E(b)).accuracy,
        penaltyPoints: 100 * (native.accuracy - cross.accuracy),
        identification: {
          native: await identification(E(b), E(b), evalRows, labels),
          mapped: await identification(mapped, E(b), evalRows, labels),
        },
      });
    }
  }
  // Curves for the pair asked for, else the pair with the smallest penalty.
  const best = cfg.curvePair
    ? result.crosses.find((c) => c.source === cfg.curvePair!.source && c.target === cfg.curvePair!.target)
    : result.crosses.reduce((x, y) => (y.penaltyPoints < x.penaltyPoints ? y : x), result.crosses[0]);
  if (best) {
    const a = models.find((m) => m.id === best.source)!, b = models.find((m) => m.id === best.target)!;
    result.curves.source = a.id;
    result.curves.target = b.id;
    for (const n of (cfg.pairCurve ?? [25, 50, 100, 250, 500, 1000, 2000, 5000]).filter((n) => n <= fitItems.length)) {
      const fit = await fitPair(a, b, n, undefined, true);
      result.curves.pairs.push([n, verify(await fit.map.applyBatch(E(a)), E(b)).accuracy]);
      const l = lambdaOf(fit);
      result.curves.pairsLambda.push({ n, ...(l.lambda !== undefined ? { lambda: l.lambda, rule: l.lambdaRule } : {}) });
    }
    const maxRank = Math.min(E(a).cols, E(b).cols, fitLabels.length - 1);
    for (const k of (cfg.rankCurve ?? [4, 8, 16, 32, 64, 128, 256]).filter((k) => k <= maxRank)) {
      const { map } = await fitPair(a, b, fitItems.length, { rank: k, lambda: best.lambda });
      result.curves.rank.push([k, verify(await map.applyBatch(E(a)), E(b)).accuracy]);
    }
  }
  return result;
}

/** Gallery: the first image of every identity with two or more evaluated images (embedded by the target); probes: the rest. */
async function identification(probesSpace: Matrix, gallerySpace: Matrix, rows: number[], labels: string[]): Promise<IdentificationResult> {
  const byId = new Map<string, number[]>();
  for (const r of rows) {
    const group = byId.get(labels[r]);
    if (group) group.push(r);
    else byId.set(labels[r], [r]);
  }
  const gallery: number[] = [], probes: number[] = [];
  for (const rs of byId.values()) {
    if (rs.length < 2) continue;
    gallery.push(rs[0]);
    probes.push(...rs.slice(1));
  }
  return identify(probesSpace.takeRows(probes), probes.map((r) => labels[r]), gallerySpace.takeRows(gallery), gallery.map((r) => labels[r]), { maxRank: 10 });
}
