// Each face network's window of the aligned canvas (and its channel order), chosen on the fitting
// pool, never on the protocol's test pairs: the images of people who appear in no pair of
// pairs.txt, paired among themselves (every matched pair of the identities with two or more
// images, every mismatched pair among those images). Stage 1 scores both channel orders at the
// network's current window; stage 2 scores the window grid in the better order. Ranked by
// balanced verification accuracy at the best threshold (ties: AUC); every trial is kept as
// evidence, with the image ids used.
import * as path from 'node:path';
import type { Matrix } from '../core/matrix';
import { fail } from '../core/validate';
import type { Dataset, ImageItem } from '../datasets';
import { identityPairs, scorePairs, type PairScore } from '../evaluate/identity-pairs';
import { cosine } from '../evaluate/verification';
import type { ChannelOrder, ModelCard } from '../models/card';
import { embedAll, type WorkModel } from './workspace';

/** A network's window on the aligned 224x224 canvas: fraction of the side, centre (fractions of the side), channel order. */
export interface AlignedCrop {
  crop: number;
  centre?: [number, number];
  /** Default: the card's. */
  channels?: ChannelOrder;
}

/** Window sizes and vertical centres tried (ArcFace's 112 crop is 0.5 centred; dlib-style chips sit lower). */
export const CROP_GRID = { crops: [0.3, 0.36, 0.42, 0.5, 0.58, 0.66, 0.75], centresY: [0.5, 0.54, 0.58, 0.62] };

/** LFW's images of people who appear in no pair of pairs.txt (the fitting pool), in dataset order. */
export function fittingPool(all: Dataset): ImageItem[] {
  if (!all.pairs) fail(TypeError, 'dataset', 'an LFW dataset with pairs', all.kind);
  const paired = new Set(all.pairs.flatMap((p) => [p.a, p.b]).map((id) => id.split('/')[0]));
  return all.items.filter((i) => !paired.has(i.label!));
}

export interface CropTrial extends Required<AlignedCrop>, PairScore {
  stage: 1 | 2;
}

export interface CropChoice {
  windows: Record<string, Required<AlignedCrop>>;
  /** Every trial by network, best first within each stage. */
  trials: Record<string, CropTrial[]>;
  /** The image ids scored (all from the fitting pool). */
  ids: string[];
  matched: number;
  mismatched: number;
}

/** Embeds `items` with each candidate (a model with its window applied); rows in item order. */
export type CandidateEmbedder = (items: ImageItem[], candidates: WorkModel[]) => Promise<Map<string, Matrix>>;

export interface ChooseCropsOptions {
  /** Where the candidates' embeddings are kept (reused by a later run). */
  dir: string;
  /** Each network's window before the choice (stage 1 runs there). */
  start: (m: WorkModel) => Required<AlignedCrop>;
  /** Default: extraction through embedAll into `dir`. */
  embed?: CandidateEmbedder;
}

/**
 * Chooses each model's window on `dataset`'s fitting pool; `dataset.items` carry the aligned
 * crops as their paths (runFaces' embedding set). See the file comment.
 */
export async function chooseCrops(dataset: Dataset, models: WorkModel[], opts: ChooseCropsOptions): Promise<CropChoice> {
  const pool = fittingPool(dataset);
  const count = new Map<string, number>();
  for (const it of pool) count.set(it.label!, (count.get(it.label!) ?? 0) + 1);
  const items = pool.filter((it) => count.get(it.label!)! > 1);
  const pairs = identityPairs(items.map((_, i) => i), items.map((it) => it.label!));
  const matched = pairs.filter((p) => p.same).length;
  if (matched === 0) fail(RangeError, 'dataset', 'people in no pair of pairs.txt with two or more images (to choose crops on)', `${pool.length} such images, none of a person with two`);
  const embed = opts.embed ?? ((its, cands) => embedCandidates(its, cands, dataset, opts.dir));
  const trials: Record<string, CropTrial[]> = {};
  const windows: Record<string, Required<AlignedCrop>> = {};
  const score = async (stage: 1 | 2, wanted: Map<WorkModel, Required<AlignedCrop>[]>) => {
    const candidates = [...wanted].flatMap(([m, list]) => list.map((w) => withWindow(m, w)));
    const vectors = await embed(items, candidates);
    for (const c of candidates) {
      const E = vectors.get(c.id)!;
      const s = scorePairs(pairs.map((p) => ({ score: cosine(E.row(p.a), E.row(p.b)), same: p.same })));
      const [base] = [...wanted.keys()].filter((m) => c.id.startsWith(`${m.id}@`));
      const { crop, cropCentre, channels } = c.card.card.input;
      (trials[base.id] ??= []).push({ crop: crop!, centre: cropCentre!, channels, ...s, stage });
    }
  };
  const rank = (list: CropTrial[]) => list.sort((a, b) => b.accuracy - a.accuracy || b.auc - a.auc);
  await score(1, new Map(models.map((m) => [m, (['RGB', 'BGR'] as const).map((channels) => ({ ...opts.start(m), channels }))])));
  const grid = (m: WorkModel) => {
    const { channels } = rank(trials[m.id])[0];
    return CROP_GRID.crops.flatMap((crop) => CROP_GRID.centresY.map((y) => ({ crop, centre: [0.5, y] as [number, number], channels })));
  };
  await score(2, new Map(models.map((m) => [m, grid(m)])));
  for (const m of models) {
    const list = trials[m.id];
    trials[m.id] = [...rank(list.filter((t) => t.stage === 2)), ...rank(list.filter((t) => t.stage === 1))];
    const { crop, centre, channels } = trials[m.id][0];
    windows[m.id] = { crop, centre, channels };
  }
  return { windows, trials, ids: items.map((it) => it.id), matched, mismatched: pairs.length - matched };
}

/** The model as a candidate: its own id, the window and channel order set on its card. */
export function withWindow(m: WorkModel, w: AlignedCrop): WorkModel {
  const input = windowInput(m.card.card.input, w);
  return { ...m, id: `${m.id}@${input.crop},${input.cropCentre!.join(',')},${input.channels}`, card: { ...m.card, card: { ...m.card.card, input } } };
}

/** A card's input with the window and channel order set (mean and std follow the channels). */
export function windowInput(input: ModelCard['input'], w: AlignedCrop): ModelCard['input'] {
  const channels = w.channels ?? input.channels;
  const flip = (v: [number, number, number]): [number, number, number] => (channels === input.channels ? v : [v[2], v[1], v[0]]);
  return { ...input, channels, mean: flip(input.mean), std: flip(input.std), crop: w.crop, cropCentre: w.centre ?? [0.5, 0.5] };
}

async function embedCandidates(items: ImageItem[], candidates: WorkModel[], dataset: Dataset, dir: string): Promise<Map<string, Matrix>> {
  const embedded = await embedAll({ ...dataset, items, pairs: [] }, candidates, path.join(dir, `pool-${items.length}`));
  return new Map([...embedded].map(([id, e]) => [id, e.embeddings.matrix]));
}
