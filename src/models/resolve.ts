// A model as every command takes it: a catalogue id (imported once into a models folder), a card
// (.json, completed from its graph where it leaves fields out) or a bare ONNX file (.onnx, run only
// when its graph, its metadata or the flags settle the card: draft.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE, catalogueEntry } from '../importers/catalogue';
import { importModel } from '../importers';
import type { DraftOptions } from './draft';
import { type LoadedCard, resolveModel } from './load';

/** The card of `ref`; catalogue ids are imported into `modelsDir` unless already there. */
export async function openModel(ref: string, modelsDir: string, options: DraftOptions = {}): Promise<LoadedCard> {
  if (fs.existsSync(ref) && fs.statSync(ref).isFile()) return resolveModel(ref, options);
  if (!catalogueEntry(ref)) {
    throw new RangeError(`model: expected a catalogue id (${CATALOGUE.map((e) => e.id).join(', ')}), a card (.json) or an ONNX file (.onnx), received '${ref}'`);
  }
  const cardPath = path.join(modelsDir, `${ref}.card.json`);
  if (!fs.existsSync(cardPath)) importModel({ source: ref, out: modelsDir });
  return resolveModel(cardPath, options);
}
