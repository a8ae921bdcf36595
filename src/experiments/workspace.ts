// What both experiments share: the models (catalogue ids imported into a work folder once, cards,
// ONNX files), and embedding a dataset with several models in one extraction pass (resumable,
// reused when done: files are keyed by the card and the model's bytes, so an edited card or
// model is embedded afresh).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Dataset } from '../datasets';
import type { Head } from '../estimators/weights';
import { extract } from '../extract';
import type { ProgressStream } from '../extract/progress';
import { PreparedModel } from '../extract/runner';
import { importModel } from '../importers';
import { catalogueEntry } from '../importers/catalogue';
import { loadEmbeddings, type LoadedEmbeddingSet } from '../io/embeddings';
import type { Matrix } from '../core/matrix';
import { viewId, type ViewOptions } from '../images/views';
import type { DraftOptions } from '../models/draft';
import type { LoadedCard } from '../models/load';
import { openModel } from '../models/resolve';

export interface WorkModel {
  id: string;
  card: LoadedCard;
  /** Classifiers: the head W (classes x dim), c. */
  head?: Head;
}

/**
 * Each model: a catalogue id (imported into `dir` unless its card is already there; `from`
 * overrides its source file), a card or an ONNX file (completed with `options`, e.g. a preset).
 */
export async function prepareModels(refs: string[], dir: string, from: Record<string, string> = {}, options: DraftOptions = {}): Promise<WorkModel[]> {
  fs.mkdirSync(dir, { recursive: true });
  const models: WorkModel[] = [];
  for (const ref of refs) {
    if (from[ref] && catalogueEntry(ref) && !fs.existsSync(path.join(dir, `${ref}.card.json`))) importModel({ source: ref, out: dir, from: from[ref] });
    const card = await openModel(ref, dir, options);
    const id = card.card.id;
    if (models.some((m) => m.id === id)) throw new RangeError(`models: expected distinct model ids, '${id}' twice (${ref}); give each card its own id`);
    const head = PreparedModel.prepare(card).head();
    models.push({ id, card, ...(head ? { head } : {}) });
  }
  return models;
}

export interface Embedded {
  embeddings: LoadedEmbeddingSet;
  logits?: LoadedEmbeddingSet;
}

/**
 * Embeds `dataset` (`views` of each image, with views) with every model in one pass into
 * `dir/<model>.npy` (and logits for classifiers). Outputs already complete are reused; an
 * interrupted pass resumes.
 */
export async function embedAll(
  dataset: Dataset, models: WorkModel[], dir: string, opts: { batch?: number; progress?: ProgressStream | null; views?: ViewOptions } = {},
): Promise<Map<string, Embedded>> {
  fs.mkdirSync(dir, { recursive: true });
  // Each model's files named once: the name hashes the model's bytes, read here once per model.
  const named = new Map(models.map((m) => {
    const stem = `${m.id}-${cardHash(m.card)}`;
    return [m, { out: path.join(dir, `${stem}.npy`), logits: m.head ? path.join(dir, `${stem}.logits.npy`) : undefined }];
  }));
  const files = (m: WorkModel) => named.get(m)!;
  const todo = models.filter((m) => {
    const f = files(m);
    return !fs.existsSync(f.out) || (f.logits !== undefined && !fs.existsSync(f.logits));
  });
  if (todo.length > 0) {
    const summary = await extract({
      dataset,
      targets: todo.map((m) => ({ model: m.card, ...files(m) })),
      batch: opts.batch ?? 16,
      progress: opts.progress ?? null,
      ...(opts.views ? { views: opts.views } : {}),
    });
    if (summary.skipped.length > 0) {
      const s = summary.skipped[0];
      throw new Error(`images: ${summary.skipped.length} could not be read (first: ${s.path}: ${s.reason}); the experiment needs every image`);
    }
  }
  const out = new Map<string, Embedded>();
  const rows = dataset.items.length * (opts.views?.count ?? 1);
  for (const m of models) {
    const f = files(m);
    const e = loadEmbeddings(f.out);
    if (e.matrix.rows !== rows) {
      throw new RangeError(`${f.out}: expected ${rows} rows for this dataset, found ${e.matrix.rows}: delete it to re-extract`);
    }
    out.set(m.id, { embeddings: e, ...(f.logits ? { logits: loadEmbeddings(f.logits) } : {}) });
  }
  return out;
}

/**
 * `views.count` views of each of `dataset.items` embedded with every model (embedAll), rows image
 * by image in view order, into `parent/<stem>-<images>-views<K>-seed<S>-<hash of the image ids>`:
 * the folder says which images and views it holds, so a later run over the same ones reuses it.
 * Every sidecar is checked row by row (`id#vK`): a cache of other images is an error, not wrong rows.
 */
export async function embedViews(
  dataset: Dataset, models: WorkModel[], parent: string, stem: string, views: Required<ViewOptions>, progress?: ProgressStream | null,
): Promise<Map<string, Matrix>> {
  const { items } = dataset;
  const hash = createHash('sha256').update(items.map((it) => it.id).join('\n')).digest('hex').slice(0, 8);
  const dir = path.join(parent, `${stem}-${items.length}-views${views.count}-seed${views.seed}-${hash}`);
  const viewed = await embedAll(dataset, models, dir, { progress, views });
  const expected = items.flatMap((it) => Array.from({ length: views.count }, (_, k) => viewId(it.id, k)));
  const rows = expected.map((_, r) => r);
  return new Map(models.map((m) => {
    const e = viewed.get(m.id)!.embeddings;
    expectIds(e.ids, expected, rows, `${m.id} on views in ${dir}`);
    return [m.id, e.matrix];
  }));
}

/** Cached rows `rows` of `ids` must be the `expected` ids, in order: a cache of other images is an error, not wrong rows. */
export function expectIds(ids: readonly string[], expected: readonly string[], rows: readonly number[], where: string): void {
  const bad = rows.findIndex((r, j) => ids[r] !== expected[j]);
  if (bad >= 0) throw new Error(`${where}: expected row ${rows[bad]} to be ${expected[bad]}, found ${ids[rows[bad]]}: delete the cached embeddings to re-extract`);
}

/** 8 hex digits of SHA-256 over the card and the model's bytes. */
function cardHash(loaded: LoadedCard): string {
  return createHash('sha256').update(JSON.stringify(loaded.card)).update(fs.readFileSync(loaded.onnxPath)).digest('hex').slice(0, 8);
}
