// `embmap card probe`: finds what a bare ONNX file cannot say about itself by trying it. A small
// labelled set that ships with embmap (the demo's LFW pairs, aligned as the experiments align them,
// or its ImageNet photos) is embedded under each plausible normalisation and channel order (stage
// 1, on a few pairs or images), then the two best under each crop window (stage 2, on more); every
// candidate embedding tensor of the graph is scored from the same runs. Ranked by verification AUC
// (faces) or top-1 (classes); the three best are scored again on the whole set (stage 3), and the
// best there is written as a card.
import type { Dataset, LfwPair } from '../datasets';
import { imagenetDataset, lfwDataset } from '../datasets';
import { makeRng, permutation } from '../evaluate/split';
import { areaUnder, cosine, evaluateVerification, roc } from '../evaluate/verification';
import { alignImages } from '../faces/stage';
import { decodeImage, inputSize, preprocessInto } from '../images/preprocess';
import type { DecodedImage, InputSpec } from '../images/types';
import type { ModelCard } from '../models/card';
import { draftCard } from '../models/draft';
import { checkCardAgainstModel, validateCard } from '../models/load';
import { PRESETS } from '../models/presets';
import { GraphIndex, withOutputs } from '../onnx/graph';
import { analyseOutputs } from '../onnx/outputs';
import { encodeModel, readModel } from '../onnx/proto';
import { openSession, ort } from '../onnx/runtime';
import type { RuntimeOptions } from '../onnx/session-options';

export type ProbeTask = 'faces' | 'classes';
type Norm = { label: string; input: Pick<InputSpec, 'scale' | 'mean' | 'std' | 'whiten'> };
type Window = { crop: number; cropCentre: [number, number] };

export interface ProbeOptions extends RuntimeOptions {
  task: ProbeTask;
  /** faces: an LFW-style folder (pairs.txt + images); classes: an ImageNet-labelled folder (labels.tsv). */
  data: string;
  /** faces: the alignment cache folder. */
  alignCache?: string;
  /** The embedding tensor, if the user names it; otherwise every candidate of the graph is scored. */
  embedding?: string;
  /** Pairs (faces) or images (classes) in stages 1 and 2 (default faces [32, 64], classes [100, 200]). */
  stages?: [number, number];
  /** One line per stage. */
  log?: (line: string) => void;
}

export interface Trial {
  /** The normalisation, channel order included, named by the preset it matches when one does. */
  preprocessing: string;
  channels: 'RGB' | 'BGR';
  tensor: string;
  crop: number;
  cropCentre: [number, number];
  labelOffset?: number;
  stage: 1 | 2 | 3;
  /** Pairs or images scored. */
  n: number;
  /** AUC (faces) or top-1 (classes). */
  score: number;
  /** Faces: d' of the cosine scores (matched against mismatched), which breaks AUC ties. */
  separation?: number;
}

export interface ProbeResult {
  card: ModelCard;
  metric: 'AUC' | 'top-1';
  /** Every trial, best first within each stage. */
  trials: Trial[];
  /** The card on the whole set: AUC and k-fold accuracy (faces) or top-1 (classes). */
  final: { n: number; score: number; accuracy: number; accuracyStd?: number; folds?: number };
  /** Fields the probe chose, and what the graph gave. */
  origins: Record<string, string>;
  seconds: number;
}

const RGB = (a: number, b: number, c: number): [number, number, number] => [a, b, c];
const NORMS: Record<ProbeTask, Norm[]> = {
  faces: [
    { label: '(x - 127.5) / 128', input: { scale: 1, mean: RGB(127.5, 127.5, 127.5), std: RGB(128, 128, 128) } },
    { label: '[-1, 1]', input: { scale: 1 / 127.5, mean: RGB(1, 1, 1), std: RGB(1, 1, 1) } },
    { label: '0..255', input: { scale: 1, mean: RGB(0, 0, 0), std: RGB(1, 1, 1) } },
    { label: '[0, 1]', input: { scale: 1 / 255, mean: RGB(0, 0, 0), std: RGB(1, 1, 1) } },
    { label: 'ImageNet mean/std', input: { scale: 1 / 255, mean: RGB(0.485, 0.456, 0.406), std: RGB(0.229, 0.224, 0.225) } },
    { label: 'mean RGB subtracted, / 255', input: { scale: 1, mean: RGB(122.782, 117.001, 104.298), std: RGB(255, 255, 255) } },
    { label: 'per-image whitening', input: { scale: 1, mean: RGB(0, 0, 0), std: RGB(1, 1, 1), whiten: true } },
  ],
  classes: [
    { label: 'ImageNet mean/std', input: { scale: 1 / 255, mean: RGB(0.485, 0.456, 0.406), std: RGB(0.229, 0.224, 0.225) } },
    { label: '[-1, 1]', input: { scale: 1 / 127.5, mean: RGB(1, 1, 1), std: RGB(1, 1, 1) } },
    { label: '0..255', input: { scale: 1, mean: RGB(0, 0, 0), std: RGB(1, 1, 1) } },
    { label: '[0, 1]', input: { scale: 1 / 255, mean: RGB(0, 0, 0), std: RGB(1, 1, 1) } },
    { label: 'mean RGB subtracted (Caffe)', input: { scale: 1, mean: RGB(123.68, 116.78, 103.94), std: RGB(1, 1, 1) } },
  ],
};
// Windows of embmap's aligned face canvas (ArcFace's 112 crop is the middle half; dlib-style
// chips sit lower), and the usual centre crops of a photo.
const WINDOWS: Record<ProbeTask, Window[]> = {
  faces: [{ crop: 0.5, cropCentre: [0.5, 0.5] }, { crop: 0.5, cropCentre: [0.5, 0.58] }, { crop: 0.42, cropCentre: [0.5, 0.5] }, { crop: 0.62, cropCentre: [0.5, 0.5] }, { crop: 0.75, cropCentre: [0.5, 0.5] }],
  classes: [{ crop: 0.875, cropCentre: [0.5, 0.5] }, { crop: 1, cropCentre: [0.5, 0.5] }],
};
const USUAL_SIZE: Record<ProbeTask, [number, number]> = { faces: [112, 112], classes: [224, 224] };

/** In the model's channel order: mean and std reversed for BGR. */
function specOf(norm: Norm, channels: 'RGB' | 'BGR', base: Pick<InputSpec, 'size' | 'layout' | 'resize'>, w: Window): InputSpec {
  const flip = (v: [number, number, number]): [number, number, number] => (channels === 'BGR' ? [v[2], v[1], v[0]] : v);
  return { ...base, channels, scale: norm.input.scale, mean: flip(norm.input.mean), std: flip(norm.input.std), ...(norm.input.whiten ? { whiten: true } : {}), crop: w.crop, cropCentre: w.cropCentre };
}

function labelOf(spec: InputSpec, norm: Norm): string {
  const same = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-9);
  const p = PRESETS.find((x) => x.input.channels === spec.channels && Math.abs(x.input.scale - spec.scale) < 1e-12 && same(x.input.mean, spec.mean) && same(x.input.std, spec.std) && !!x.input.whiten === !!spec.whiten);
  return `${norm.label} ${spec.channels}${p ? ` (preset ${p.name})` : ''}`;
}

/** Runs the probe on the model at `file`; see the file comment. `partial`: a partial card to start from. */
export async function probeCard(file: string, options: ProbeOptions, partial: Record<string, unknown> = {}): Promise<ProbeResult> {
  const t0 = Date.now();
  const { task } = options;
  const log = options.log ?? (() => {});
  const model = readModel(file);
  const index = new GraphIndex(model.graph, file);
  const draft = draftCard(partial, model, file, options.embedding ? { embedding: options.embedding } : {});
  const origins: Record<string, string> = Object.fromEntries(Object.entries(draft.origins).filter(([k]) => ['input.name', 'input.layout', 'input.size'].includes(k)));
  const size = (draft.card.input.size as [number, number] | undefined) ?? USUAL_SIZE[task];
  if (!draft.card.input.size) origins['input.size'] = `probe (the graph's size is symbolic: the usual ${size.join('x')} for ${task})`;
  const base = { size, layout: draft.card.input.layout as 'NCHW' | 'NHWC', resize: (task === 'faces' ? 'stretch' : 'crop') as InputSpec['resize'] };
  const inputName = draft.card.input.name as string;

  // What to fetch: every embedding candidate (faces), or the logits of the classifier (classes).
  const analysis = analyseOutputs(index, { ...(task === 'classes' ? { role: 'classifier' as const } : {}), ...(options.embedding ? { embedding: options.embedding } : {}) });
  let tensors: string[];
  if (task === 'classes') {
    if (!analysis.logits) throw new RangeError(`${file}: probe --classes: expected a classifier (a Softmax or a linear head over one embedding), ${analysis.unsettled ?? 'found no head'}; name the embedding with --embedding`);
    tensors = [analysis.logits.tensor];
  } else {
    tensors = analysis.candidates.map((c) => c.tensor);
    if (!tensors.length) throw new RangeError(`${file}: probe --faces: ${analysis.unsettled}; name the embedding with --embedding`);
  }
  const { session } = await openSession(encodeModel(withOutputs(model, tensors, file)), file, options);
  const batchDim = index.shapeOf(inputName)?.[0];
  const fixed = typeof batchDim === 'number' && batchDim > 0 ? batchDim : undefined;

  try {
    const data = task === 'faces' ? await faceData(options, log) : classData(options.data);
    const run = async (rows: number[], spec: InputSpec): Promise<Float32Array[][]> => {
      const per = inputSize(spec);
      const out: Float32Array[][] = tensors.map(() => []);
      const step = fixed ?? 16;
      for (let s = 0; s < rows.length; s += step) {
        const chunk = rows.slice(s, s + step);
        const buf = new Float32Array(step * per);
        for (let k = 0; k < chunk.length; k++) await preprocessInto(await data.image(chunk[k]), spec, buf, k * per);
        const n = fixed ?? chunk.length;
        const dims = spec.layout === 'NCHW' ? [n, 3, size[0], size[1]] : [n, size[0], size[1], 3];
        const res = await session.run({ [inputName]: new (ort().Tensor)('float32', buf.subarray(0, n * per), dims) }, tensors);
        tensors.forEach((t, j) => {
          const v = res[t].data as Float32Array;
          const d = v.length / n;
          for (let k = 0; k < chunk.length; k++) out[j].push(v.slice(k * d, (k + 1) * d));
        });
      }
      return out;
    };
    // Each candidate tensor's vector of an image row, from one pass over the units' images.
    const embed = async (units: number[], spec: InputSpec) => {
      const rows = data.rowsOf(units);
      const got = await run(rows, spec);
      const at = new Map(rows.map((r, i) => [r, i]));
      return (j: number) => (r: number) => got[j][at.get(r)!];
    };
    const score = async (units: number[], spec: InputSpec, label: string, stage: Trial['stage']): Promise<Trial[]> => {
      const vectors = await embed(units, spec);
      const common = { preprocessing: label, channels: spec.channels, crop: spec.crop!, cropCentre: spec.cropCentre!, stage, n: units.length };
      return tensors.flatMap((tensor, j) => data.score(units, vectors(j)).map((s) => ({ ...common, tensor, ...s })));
    };
    const [n1, n2] = options.stages ?? (task === 'faces' ? [32, 64] : [100, 200]);
    const units = data.order();
    const trials: Trial[] = [];
    const rank = (list: Trial[]) => list.sort((a, b) => b.score - a.score || (b.separation ?? 0) - (a.separation ?? 0));

    const stage1: Trial[] = [];
    const norms = NORMS[task];
    const [firstWindow] = WINDOWS[task];
    for (const norm of norms) {
      for (const channels of ['RGB', 'BGR'] as const) {
        const spec = specOf(norm, channels, base, firstWindow);
        stage1.push(...(await score(units.slice(0, n1), spec, labelOf(spec, norm), 1)));
      }
    }
    rank(stage1);
    log(`stage 1: ${stage1.length} trials on ${Math.min(n1, units.length)} ${data.unit}; best ${stage1[0].preprocessing} '${stage1[0].tensor}' ${data.metric} ${stage1[0].score.toFixed(4)}`);
    const normOf = (t: Trial) => norms.find((n) => t.preprocessing.startsWith(n.label + ' '))!;
    const stage2: Trial[] = [];
    const leaders = [...new Map(stage1.map((t) => [t.preprocessing, t])).values()].slice(0, 2);
    for (const lead of leaders) {
      for (const w of WINDOWS[task]) stage2.push(...(await score(units.slice(0, n2), specOf(normOf(lead), lead.channels, base, w), lead.preprocessing, 2)));
    }
    rank(stage2);
    log(`stage 2: ${stage2.length} trials on ${Math.min(n2, units.length)} ${data.unit}; best ${stage2[0].preprocessing}, crop ${stage2[0].crop} at [${stage2[0].cropCentre}], '${stage2[0].tensor}' ${data.metric} ${stage2[0].score.toFixed(4)}`);
    // Stage 3: the three best settings (all tensors of each come from the same run) on every unit.
    const settings = [...new Map(stage2.map((t) => [`${t.preprocessing} ${t.crop} ${t.cropCentre}`, t])).values()].slice(0, 3);
    const stage3: Trial[] = [];
    const runs = new Map<Trial, (j: number) => (r: number) => Float32Array>();
    for (const t of settings) {
      const vectors = await embed(units, specOf(normOf(t), t.channels, base, t));
      const common = { preprocessing: t.preprocessing, channels: t.channels, crop: t.crop, cropCentre: t.cropCentre, stage: 3 as const, n: units.length };
      for (const [j, tensor] of tensors.entries()) {
        for (const sc of data.score(units, vectors(j))) {
          const trial = { ...common, tensor, ...sc };
          stage3.push(trial);
          runs.set(trial, vectors);
        }
      }
    }
    rank(stage3);
    trials.push(...stage3, ...stage2, ...stage1);
    const best = stage3[0];
    const spec = specOf(normOf(best), best.channels, base, best);
    const vector = runs.get(best)!(tensors.indexOf(best.tensor));
    const final = data.final(units, vector, best.labelOffset);
    log(`stage 3: the ${settings.length} best settings on all ${units.length} ${data.unit}: best ${best.preprocessing}, crop ${best.crop} at [${best.cropCentre}], '${best.tensor}' ${data.metric} ${final.score.toFixed(4)}, accuracy ${(100 * final.accuracy).toFixed(2)}%`);

    const dim = task === 'classes' ? analysis.embedding!.dim : vector(data.rowsOf(units)[0]).length;
    const card: ModelCard = {
      id: (draft.card.id as string),
      onnx: draft.card.onnx as string,
      input: { name: inputName, ...spec },
      embedding: task === 'classes' ? { tensor: analysis.embedding!.tensor, dim: dim! } : { tensor: best.tensor, dim: dim! },
      ...(task === 'classes' ? { logits: { ...analysis.logits!, ...(best.labelOffset ? { labelOffset: best.labelOffset } : {}) } } : {}),
      source: `embmap card probe --${task}: ${best.preprocessing}, crop ${best.crop} at [${best.cropCentre}]${task === 'faces' ? ' of the aligned face' : ''}; ${data.metric} ${final.score.toFixed(4)}, accuracy ${(100 * final.accuracy).toFixed(2)}% on ${units.length} ${data.unit} of ${options.data}`,
    };
    for (const k of ['channels', 'scale', 'mean', 'std', 'resize', 'crop', 'cropCentre', ...(spec.whiten ? ['whiten'] : [])]) origins[`input.${k}`] = 'probe';
    origins['embedding.tensor'] = options.embedding ? 'flag' : task === 'faces' && tensors.length > 1 ? 'probe' : 'graph';
    const validated = validateCard(card, `${file} (probe)`);
    checkCardAgainstModel(validated, index);
    return { card: validated, metric: data.metric, trials, final, origins, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await session.release();
  }
}

interface ProbeData {
  unit: string;
  metric: 'AUC' | 'top-1';
  /** Units (pairs or images) in a seeded order balanced between classes: stage sizes are prefixes. */
  order(): number[];
  /** The image rows the units need. */
  rowsOf(units: number[]): number[];
  image(row: number): Promise<DecodedImage>;
  /** Scores of the units (one per label offset tried, for classes). */
  score(units: number[], vector: (row: number) => Float32Array): { score: number; separation?: number; labelOffset?: number }[];
  final(units: number[], vector: (row: number) => Float32Array, labelOffset?: number): ProbeResult['final'];
}

async function faceData(options: ProbeOptions, log: (line: string) => void): Promise<ProbeData> {
  const dataset = lfwDataset(options.data, { subset: 'pairs' });
  if (!options.alignCache) throw new TypeError('alignCache: expected a folder for the aligned faces (the faces probe aligns the pairs first)');
  const { images, summary } = await alignImages(dataset.items.map((i) => i.path), { cache: options.alignCache, fallback: 'centre' });
  const unreadable = summary.reports.find((r) => !images[r.index].crop);
  if (unreadable) throw new Error(`${unreadable.file}: ${unreadable.reason}; the probe needs every image`);
  log(`aligned ${summary.aligned} of ${summary.images} faces (${summary.fromCache} from the cache ${summary.cache}), ${summary.fallback} from a centred crop`);
  const row = new Map(dataset.items.map((it, i) => [it.id, i]));
  const pairs: LfwPair[] = dataset.pairs!;
  const cache = new Map<number, Promise<DecodedImage>>();
  const scored = (units: number[], vector: (row: number) => Float32Array) =>
    units.map((u) => ({ score: cosine(vector(row.get(pairs[u].a)!), vector(row.get(pairs[u].b)!)), same: pairs[u].same, fold: pairs[u].fold }));
  return {
    unit: 'pairs',
    metric: 'AUC',
    order: () => balanced(pairs.map((p) => (p.same ? 1 : 0))),
    rowsOf: (units) => [...new Set(units.flatMap((u) => [row.get(pairs[u].a)!, row.get(pairs[u].b)!]))],
    image: (r) => {
      if (!cache.has(r)) cache.set(r, decodeImage(images[r].crop!));
      return cache.get(r)!;
    },
    score: (units, vector) => {
      const s = scored(units, vector);
      return [{ score: areaUnder(roc(s)), separation: dPrime(s.filter((p) => p.same).map((p) => p.score), s.filter((p) => !p.same).map((p) => p.score)) }];
    },
    final: (units, vector) => {
      const v = evaluateVerification(scored(units, vector));
      return { n: units.length, score: v.auc, accuracy: v.accuracy, accuracyStd: v.accuracyStd, folds: v.folds };
    },
  };
}

function classData(dir: string): ProbeData {
  const dataset: Dataset = imagenetDataset(dir);
  const labels = dataset.items.map((i) => Number(i.label));
  const cache = new Map<number, Promise<DecodedImage>>();
  // Top-1 with class k of the logits = label k + offset; 1001-way models put a background class first.
  const top1 = (units: number[], vector: (row: number) => Float32Array, offset: number) =>
    units.filter((u) => {
      const v = vector(u);
      let arg = 0;
      for (let k = 1; k < v.length; k++) if (v[k] > v[arg]) arg = k;
      return arg + offset === labels[u];
    }).length / units.length;
  const offsets = (v: Float32Array) => (v.length > 1000 ? [0, -(v.length - 1000)] : [0]);
  return {
    unit: 'images',
    metric: 'top-1',
    order: () => Array.from(permutation(labels.length, makeRng(0))),
    rowsOf: (units) => units,
    image: (r) => {
      if (!cache.has(r)) cache.set(r, decodeImage(dataset.items[r].path));
      return cache.get(r)!;
    },
    score: (units, vector) => offsets(vector(units[0])).map((o) => ({ score: top1(units, vector, o), ...(o ? { labelOffset: o } : {}) })),
    final: (units, vector, offset) => {
      const s = top1(units, vector, offset ?? 0);
      return { n: units.length, score: s, accuracy: s };
    },
  };
}

/** (mean(a) - mean(b)) / sqrt((var(a) + var(b)) / 2). */
function dPrime(a: number[], b: number[]): number {
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const variance = (v: number[], m: number) => v.reduce((x, y) => x + (y - m) ** 2, 0) / v.length;
  const [ma, mb] = [mean(a), mean(b)];
  return (ma - mb) / Math.sqrt((variance(a, ma) + variance(b, mb)) / 2 || 1e-12);
}

/** Indices in a seeded order alternating between the two classes, so every prefix is balanced. */
function balanced(cls: number[]): number[] {
  const rng = makeRng(0);
  const of = (c: number) => {
    const idx = cls.flatMap((v, i) => (v === c ? [i] : []));
    return Array.from(permutation(idx.length, rng), (k) => idx[k]);
  };
  const [a, b] = [of(1), of(0)];
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...(i < a.length ? [a[i]] : []), ...(i < b.length ? [b[i]] : []));
  return out;
}

