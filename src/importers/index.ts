// Importing a pretrained network: convert it to a float32 ONNX file and write its model card
// (and, for classifiers, the head W, c as a .safetensors file for the `weights` estimator).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertOneOf, fail } from '../core/validate';
import { writeFileAtomic } from '../io/atomic';
import { writeSafetensors } from '../io/safetensors';
import type { ModelCard } from '../models/card';
import { METADATA_KEY } from '../models/draft';
import { GraphIndex } from '../onnx/graph';
import { readHead } from '../onnx/head';
import { writeModel } from '../onnx/proto';
import { type CatalogueEntry, IMPORT_KINDS, type ImportKind, type Preprocessing, catalogueEntry, catalogueEntryForFile, locate } from './catalogue';
import { convertFaceapi } from './faceapi';
import type { Converted } from './graph';
import { convertTflite } from './tflite';
import { convertTfjs } from './tfjs';

export { CATALOGUE, FACE_DETECTOR, IMPORT_KINDS, type CatalogueEntry, type ImportKind, catalogueEntry, locate, sharedRoots } from './catalogue';
export { ImportError, UnsupportedOpError } from './graph';
export { TFJS_OPS, convertTfjs, convertTfjsOutputs } from './tfjs';
export { TFLITE_OPS, convertTflite } from './tflite';
export { convertFaceapi } from './faceapi';

export interface ImportOptions {
  /** A catalogue id, or the model's file (model.json, .tflite, face-api weights manifest). */
  source: string;
  /** Directory for the ONNX file, the card and the head; created if missing. */
  out: string;
  /** Format of a file source; optional for catalogue ids. */
  kind?: ImportKind;
  /** Id of the card and file stem (default: the catalogue id, or the source file's name). */
  id?: string;
  /** For catalogue ids: the model's file, or a folder holding it, instead of the default location. */
  from?: string;
  /** Source-graph tensor of the embedding / the pre-softmax logits, overriding the catalogue. */
  embedding?: string;
  logits?: string;
  /** Preprocessing fields overriding the catalogue's (or the defaults: RGB, 0..255 unnormalised, centre crop). */
  preprocessing?: Partial<Preprocessing>;
}

export interface ImportResult {
  card: ModelCard;
  cardPath: string;
  onnxPath: string;
  /** The classifier head W (classes x dim) and c, for `embmap fit --method weights`. */
  headPath?: string;
  /** The catalogue entry used, if any. */
  entry?: CatalogueEntry;
  /** Where the preprocessing came from: catalogue, model (quantised input), defaults, overrides. */
  preprocessingFrom: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DEFAULTS: Preprocessing = { channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'crop' };

function convert(kind: ImportKind, file: string, embedding?: string, logits?: string): Converted {
  if (kind === 'tfjs') return convertTfjs(file, { embedding, logits });
  if (kind === 'tflite') return convertTflite(file, { embedding, logits });
  return convertFaceapi(file);
}

/** Converts a model and writes `<out>/<id>.onnx`, `<out>/<id>.card.json` (and `<out>/<id>.head.safetensors`). */
export function importModel(options: ImportOptions): ImportResult {
  if (options === null || typeof options !== 'object') fail(TypeError, 'options', '{ source, out, kind?, ... }', options);
  const { source, out } = options;
  if (typeof source !== 'string' || source === '') fail(TypeError, 'source', 'a catalogue id or a model file path', source);
  if (typeof out !== 'string' || out === '') fail(TypeError, 'out', 'an output directory path', out);
  if (options.kind !== undefined) assertOneOf('kind', options.kind, IMPORT_KINDS);

  // A catalogue id, or a file that may be a known model's distributed file.
  let entry = catalogueEntry(source);
  let file: string;
  let origin: string;
  if (entry) {
    if (options.kind && options.kind !== entry.kind) throw new TypeError(`kind: ${source} is a ${entry.kind} model, received '${options.kind}'`);
    ({ file, origin } = locate(entry, options.from));
  } else {
    if (!fs.existsSync(source)) throw new Error(`source: expected a catalogue id (embmap import --list) or an existing model file, received '${source}'`);
    if (options.from !== undefined) throw new TypeError(`from: only applies to catalogue ids; '${source}' is a file`);
    file = source;
    origin = path.resolve(source);
    entry = catalogueEntryForFile(source);
    if (entry && options.kind && options.kind !== entry.kind) entry = undefined;
  }
  const kind = options.kind ?? entry?.kind;
  if (!kind) throw new TypeError(`kind: expected one of ${IMPORT_KINDS.join(', ')} for the file '${source}'`);

  const id = options.id ?? entry?.id ?? path.basename(file).replace(/(-weights_manifest)?\.(json|tflite)$/i, '');
  if (!ID_PATTERN.test(id)) fail(TypeError, 'id', 'letters, digits, ".", "_" or "-" (starting with a letter or digit)', id);

  const converted = convert(kind, file, options.embedding ?? entry?.embedding, options.logits ?? entry?.logits);

  let preprocessingFrom = entry?.preprocessing ? `catalogue (${entry.id})` : 'defaults';
  let pre: Preprocessing = entry?.preprocessing ?? DEFAULTS;
  if (!entry?.preprocessing && converted.normalisation) {
    const { mean, std } = converted.normalisation;
    pre = { ...DEFAULTS, mean: [mean, mean, mean], std: [std, std, std] };
    preprocessingFrom = 'model (quantised input zero point and scale)';
  }
  const overrides = Object.fromEntries(Object.entries(options.preprocessing ?? {}).filter(([, v]) => v !== undefined));
  if (Object.keys(overrides).length) {
    pre = { ...pre, ...overrides };
    preprocessingFrom += ` with ${Object.keys(overrides).join(', ')} overridden`;
  }
  if (converted.input.channels !== 3) throw new Error(`${file}: expected a 3-channel image input, the model's input has ${converted.input.channels} channels`);

  fs.mkdirSync(out, { recursive: true });
  const onnxPath = path.join(out, `${id}.onnx`);
  const cardPath = path.join(out, `${id}.card.json`);
  const card: ModelCard = {
    id,
    onnx: path.basename(onnxPath),
    input: { name: converted.input.name, size: converted.input.size, layout: 'NCHW', ...pre },
    embedding: { tensor: converted.embedding.tensor, dim: converted.embedding.dim },
    source: [
      `${kind} model ${path.basename(file)} from ${origin}`,
      entry ? `licence ${entry.licence}` : undefined,
      `embedding = ${converted.embedding.source}`,
      converted.logits ? `logits = ${converted.logits.source}` : undefined,
    ].filter(Boolean).join('; '),
  };
  let headPath: string | undefined;
  if (converted.logits) {
    const { tensor, classes, head } = converted.logits;
    card.logits = { tensor, classes, ...(head ? { head } : {}), ...(entry?.labelOffset !== undefined ? { labelOffset: entry.labelOffset } : {}) };
    if (head) {
      headPath = path.join(out, `${id}.head.safetensors`);
      const { W, c } = readHead(new GraphIndex(converted.model.graph, onnxPath), head);
      writeSafetensors(headPath, { weight: W, bias: c }, { model: id, source: card.source! });
    }
  }
  // The card travels inside the file too (draft.ts reads it), so a copied .onnx alone still runs.
  const { onnx: _onnx, source: _source, ...inside } = card;
  writeModel(onnxPath, { ...converted.model, metadataProps: [...(converted.model.metadataProps ?? []), { key: METADATA_KEY, value: JSON.stringify(inside) }] });
  writeFileAtomic(cardPath, [Buffer.from(JSON.stringify(card, null, 2) + '\n')]);
  return { card, cardPath, onnxPath, headPath, entry, preprocessingFrom };
}
