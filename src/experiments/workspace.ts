// What both experiments share: importing catalogue models into a work folder (once), and
// embedding a dataset with several models in one extraction pass (resumable, reused when done).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Dataset } from '../datasets';
import { loadHead, type Head } from '../estimators/weights';
import { extract } from '../extract';
import type { ProgressStream } from '../extract/progress';
import { importModel } from '../importers';
import { loadEmbeddings, type LoadedEmbeddingSet } from '../io/embeddings';
import { loadCard, type LoadedCard } from '../models/load';

export interface WorkModel {
  id: string;
  card: LoadedCard;
  /** Classifiers: the head W (classes x dim), c. */
  head?: Head;
}

/** Imports each catalogue id into `dir` unless its card is already there. `from` overrides a model's source file. */
export function prepareModels(ids: string[], dir: string, from: Record<string, string> = {}): WorkModel[] {
  fs.mkdirSync(dir, { recursive: true });
  return ids.map((id) => {
    const cardPath = path.join(dir, `${id}.card.json`);
    const headPath = path.join(dir, `${id}.head.safetensors`);
    if (!fs.existsSync(cardPath)) importModel({ source: id, out: dir, ...(from[id] ? { from: from[id] } : {}) });
    const card = loadCard(cardPath);
    return { id, card, ...(fs.existsSync(headPath) ? { head: loadHead(headPath) } : {}) };
  });
}

export interface Embedded {
  embeddings: LoadedEmbeddingSet;
  logits?: LoadedEmbeddingSet;
}

/**
 * Embeds `dataset` with every model in one pass into `dir/<model>.npy` (and logits for
 * classifiers). Outputs already complete are reused; an interrupted pass resumes.
 */
export async function embedAll(
  dataset: Dataset, models: WorkModel[], dir: string, opts: { batch?: number; progress?: ProgressStream | null } = {},
): Promise<Map<string, Embedded>> {
  fs.mkdirSync(dir, { recursive: true });
  const files = (m: WorkModel) => ({ out: path.join(dir, `${m.id}.npy`), logits: m.head ? path.join(dir, `${m.id}.logits.npy`) : undefined });
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
    });
    if (summary.skipped.length > 0) {
      const s = summary.skipped[0];
      throw new Error(`images: ${summary.skipped.length} could not be read (first: ${s.path}: ${s.reason}); the experiment needs every image`);
    }
  }
  const out = new Map<string, Embedded>();
  for (const m of models) {
    const f = files(m);
    const e = loadEmbeddings(f.out);
    if (e.matrix.rows !== dataset.items.length) {
      throw new RangeError(`${f.out}: expected ${dataset.items.length} rows for this dataset, found ${e.matrix.rows}: delete it to re-extract`);
    }
    out.set(m.id, { embeddings: e, ...(f.logits ? { logits: loadEmbeddings(f.logits) } : {}) });
  }
  return out;
}
