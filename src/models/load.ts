// Model cards from disk and from the graph: strict validation (every error names the card, the
// field, what was expected and what was found), cards completed from the graph, its metadata and
// flags (draft.ts; nothing is assumed), and the check that a card matches its model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe } from '../core/validate';
import { FileFormatError } from '../io/binary';
import { GraphIndex, type Dim, withOutputs } from '../onnx/graph';
import { decodeModel, encodeModel, readModelBytes } from '../onnx/proto';
import { dataTypeName } from '../onnx/tensor';
import { openSession, probeOutputDims } from '../onnx/runtime';
import type { OnnxModel } from '../onnx/types';
import type { ChannelOrder, Layout, ModelCard, ResizePolicy } from './card';
import { type DraftOptions, draftCard, missingMessage } from './draft';

export const LAYOUTS: readonly Layout[] = ['NCHW', 'NHWC'];
export const CHANNEL_ORDERS: readonly ChannelOrder[] = ['RGB', 'BGR'];
export const RESIZE_POLICIES: readonly ResizePolicy[] = ['crop', 'stretch', 'pad'];

/** A card ready to use: validated, its ONNX file resolved. */
export interface LoadedCard {
  card: ModelCard;
  /** Absolute path of the ONNX file. */
  onnxPath: string;
  /** The card file, or the ONNX file when the card was read from the graph. */
  source: string;
  /** Where each field came from when the card was completed (draft.ts: 'card', 'metadata', 'graph', 'preset NAME', 'flag'); {} for a complete card file. */
  origins: Record<string, string>;
}

/** The ONNX file as resolution read and parsed it, for modelHandle (handle.ts). */
export interface ParsedModel {
  onnxPath: string;
  bytes: Buffer;
  model: OnnxModel;
  index: GraphIndex;
}
// Kept beside the card resolution returns so that a model is read and decoded once per process;
// taken by the first handle, so the bytes are not held for as long as the card lives.
const parsedModels = new WeakMap<LoadedCard, ParsedModel>();

/** What resolving `loaded` read (once: a second call, or a card not from resolution, gets undefined). */
export function takeParsedModel(loaded: LoadedCard): ParsedModel | undefined {
  const parsed = parsedModels.get(loaded);
  parsedModels.delete(loaded);
  return parsed?.onnxPath === loaded.onnxPath ? parsed : undefined;
}

const CARD_KEYS = ['id', 'onnx', 'input', 'embedding', 'logits', 'source'];
const INPUT_KEYS = ['name', 'size', 'layout', 'channels', 'scale', 'mean', 'std', 'resize', 'crop', 'cropCentre', 'whiten'];

/**
 * Checks that `obj` is a complete ModelCard and returns it typed. `source` (a path, or e.g. "importer
 * output") starts every error message. Unknown keys are errors, so a misspelt field is not ignored.
 */
export function validateCard(obj: unknown, source: string): ModelCard {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new FileFormatError(source, `${field}: expected ${expected}, found ${describe(value)}`);
  };
  const object = (field: string, value: unknown, keys: string[]): Record<string, unknown> => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) bad(field, 'an object', value);
    const extra = Object.keys(value as object).filter((k) => !keys.includes(k));
    if (extra.length) bad(`${field}.${extra[0]}`, `one of the fields ${keys.join(', ')}`, extra[0]);
    return value as Record<string, unknown>;
  };
  const text = (field: string, value: unknown) => (typeof value === 'string' && value !== '' ? value : bad(field, 'a non-empty string', value));
  const integer = (field: string, value: unknown, min: number) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min ? value : bad(field, `an integer >= ${min}`, value);
  const positive = (field: string, value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : bad(field, 'a finite number > 0', value);
  const fraction = (field: string, value: unknown) =>
    typeof value === 'number' && value > 0 && value <= 1 ? value : bad(field, 'a fraction in (0, 1]', value);
  const finite = (field: string, value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : bad(field, 'a finite number', value));
  const triple = (field: string, value: unknown, check: (f: string, v: unknown) => number) => {
    if (!Array.isArray(value) || value.length !== 3) bad(field, 'an array of 3 numbers (one per channel, R G B)', value);
    return (value as unknown[]).map((v, i) => check(`${field}[${i}]`, v)) as [number, number, number];
  };
  const cropCentre = (value: unknown): [number, number] => {
    const ok = Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && v >= 0 && v <= 1);
    return ok ? (value as [number, number]) : bad('input.cropCentre', 'an array of 2 fractions in [0, 1] (x, y)', value);
  };
  const oneOf = <T extends string>(field: string, value: unknown, allowed: readonly T[]) =>
    (allowed as readonly unknown[]).includes(value) ? (value as T) : bad(field, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);

  const c = object('card', obj, CARD_KEYS);
  const i = object('input', c.input, INPUT_KEYS);
  if (!Array.isArray(i.size) || i.size.length !== 2) bad('input.size', '[height, width]', i.size);
  const size = (i.size as unknown[]).map((v, k) => integer(`input.size[${k}]`, v, 1)) as [number, number];
  const e = object('embedding', c.embedding, ['tensor', 'dim']);
  const card: ModelCard = {
    id: text('id', c.id),
    onnx: text('onnx', c.onnx),
    input: {
      name: text('input.name', i.name),
      size,
      layout: oneOf('input.layout', i.layout, LAYOUTS),
      channels: oneOf('input.channels', i.channels, CHANNEL_ORDERS),
      scale: positive('input.scale', i.scale),
      mean: triple('input.mean', i.mean, finite),
      std: triple('input.std', i.std, positive),
      resize: oneOf('input.resize', i.resize, RESIZE_POLICIES),
      ...(i.crop !== undefined ? { crop: fraction('input.crop', i.crop) } : {}),
      ...(i.cropCentre !== undefined ? { cropCentre: cropCentre(i.cropCentre) } : {}),
      ...(i.whiten !== undefined ? { whiten: typeof i.whiten === 'boolean' ? i.whiten : bad('input.whiten', 'a boolean', i.whiten) } : {}),
    },
    embedding: { tensor: text('embedding.tensor', e.tensor), dim: integer('embedding.dim', e.dim, 1) },
  };
  // null: the card says the model has no logits.
  if (c.logits !== undefined && c.logits !== null) {
    const l = object('logits', c.logits, ['tensor', 'classes', 'head', 'labelOffset']);
    card.logits = { tensor: text('logits.tensor', l.tensor), classes: integer('logits.classes', l.classes, 1) };
    if (l.head !== undefined) {
      const h = object('logits.head', l.head, ['weight', 'bias', 'transposed']);
      card.logits.head = { weight: text('logits.head.weight', h.weight) };
      if (h.bias !== undefined) card.logits.head.bias = text('logits.head.bias', h.bias);
      if (h.transposed !== undefined) card.logits.head.transposed = typeof h.transposed === 'boolean' ? h.transposed : bad('logits.head.transposed', 'a boolean', h.transposed);
    }
    if (l.labelOffset !== undefined) card.logits.labelOffset = integer('logits.labelOffset', l.labelOffset, -Infinity);
  }
  if (c.source !== undefined) card.source = text('source', c.source);
  return card;
}

/** Reads and validates a complete card (JSON); its `onnx` path is resolved against the card's folder. */
export function loadCard(cardPath: string): LoadedCard {
  const obj = readJson(cardPath);
  const card = validateCard(obj, cardPath);
  return { card, onnxPath: onnxPathOf(cardPath, card.onnx), source: cardPath, origins: {} };
}

/**
 * A card for a bare ONNX file: what the graph, its metadata and `options` (a preset, a named
 * embedding) settle (draft.ts). Output sizes the graph leaves undeclared are learned by one probe
 * run. Anything still missing is an error that lists it and every way to give it.
 */
export async function cardFromOnnx(modelPath: string, options: DraftOptions = {}): Promise<LoadedCard> {
  return completeCard({}, modelPath, modelPath, options);
}

/**
 * A model given as an .onnx file or as a card (.json). A card may leave fields out: they are
 * completed as cardFromOnnx does; `options` (flags) override the card's preprocessing.
 */
export async function resolveModel(file: string, options: DraftOptions = {}): Promise<LoadedCard> {
  if (file.toLowerCase().endsWith('.onnx')) return cardFromOnnx(file, options);
  const obj = readJson(file);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FileFormatError(file, `card: expected an object, found ${describe(obj)}`);
  const partial = obj as Record<string, unknown>;
  if (typeof partial.onnx !== 'string' || partial.onnx === '') throw new FileFormatError(file, `onnx: expected the model's file name (relative to the card), found ${describe(partial.onnx)}`);
  return completeCard(partial, onnxPathOf(file, partial.onnx), file, options);
}

async function completeCard(partial: Record<string, unknown>, onnxPath: string, source: string, options: DraftOptions): Promise<LoadedCard> {
  const bytes = readModelBytes(onnxPath);
  const model = decodeModel(bytes, onnxPath);
  const index = new GraphIndex(model.graph, onnxPath);
  const draft = draftCard(partial, model, onnxPath, options);
  if (draft.missing.length) throw new RangeError(missingMessage(draft, source));
  const { card, origins } = draft;
  const input = card.input;
  // Sizes the graph does not declare: one probe run on a zero image.
  const emb = card.embedding as { tensor?: string; dim?: number };
  const logits = card.logits as { tensor?: string; classes?: number } | undefined;
  const unknown = [emb.dim === undefined ? emb.tensor : undefined, logits && logits.classes === undefined ? logits.tensor : undefined].filter((t): t is string => !!t);
  if (unknown.length) {
    const size = input.size as [number, number];
    const dims = input.layout === 'NHWC' ? [1, size[0], size[1], 3] : [1, 3, size[0], size[1]];
    for (const t of unknown) index.assertTensor(t === emb.tensor ? 'embedding.tensor' : 'logits.tensor', t);
    const { session } = await openSession(encodeModel(withOutputs(model, unknown, onnxPath)), onnxPath);
    try {
      const got = await probeOutputDims(session, input.name as string, dims, unknown);
      unknown.forEach((t, k) => {
        const n = got[k].slice(1).reduce((a, b) => a * b, 1);
        if (t === emb.tensor && emb.dim === undefined) emb.dim = n;
        if (logits && t === logits.tensor && logits.classes === undefined) logits.classes = n;
      });
    } finally {
      await session.release();
    }
  }
  const validated = validateCard(card, source);
  checkCardAgainstModel(validated, index);
  const loaded = { card: validated, onnxPath: path.resolve(onnxPath), source, origins };
  parsedModels.set(loaded, { onnxPath: loaded.onnxPath, bytes, model, index });
  return loaded;
}

/**
 * Checks a card against its graph: the input exists, takes float32 images of the card's layout and
 * size (3 channels), and every tensor the card names exists with the declared sizes where the graph
 * declares them. Errors name the graph, the card field and the names that do exist.
 */
export function checkCardAgainstModel(card: ModelCard, index: GraphIndex): void {
  const where = index.where;
  const inputs = index.inputs();
  const input = inputs.find((v) => v.name === card.input.name);
  if (!input) {
    throw new RangeError(`${where}: input.name: expected one of the graph's inputs ${inputs.map((v) => `'${v.name}'`).join(', ')}, received '${card.input.name}'`);
  }
  const type = index.elemTypeOf(card.input.name);
  if (type !== undefined && dataTypeName(type) !== 'float') {
    throw new TypeError(`${where}: input '${card.input.name}': expected a float32 input, the graph declares ${dataTypeName(type)}`);
  }
  const [h, w] = card.input.size;
  const expected: Dim[] = card.input.layout === 'NCHW' ? [null, 3, h, w] : [null, h, w, 3];
  const declared = index.shapeOf(card.input.name);
  if (declared && (declared.length !== 4 || declared.some((d, k) => k > 0 && typeof d === 'number' && d !== expected[k]))) {
    const show = (dims: Dim[]) => `[${dims.map((d) => (typeof d === 'number' ? d : (d ?? '?'))).join(', ')}]`;
    throw new RangeError(`${where}: input '${card.input.name}': the card describes ${card.input.layout} ${h}x${w} RGB images ${show(['N', ...expected.slice(1)])}, the graph declares ${show(declared)}`);
  }
  index.assertTensor('embedding.tensor', card.embedding.tensor);
  checkDeclaredSize(index, 'embedding.dim', card.embedding.tensor, card.embedding.dim);
  const logits = card.logits;
  if (!logits) return;
  index.assertTensor('logits.tensor', logits.tensor);
  checkDeclaredSize(index, 'logits.classes', logits.tensor, logits.classes);
  if (logits.head) {
    const W = index.readWeight(logits.head.weight);
    const [rows, cols] = logits.head.transposed ? [W.dims[1], W.dims[0]] : [W.dims[0], W.data.length / W.dims[0]];
    if (rows !== logits.classes || cols !== card.embedding.dim) {
      throw new RangeError(`${where}: logits.head.weight '${logits.head.weight}': expected ${logits.classes} x ${card.embedding.dim} (classes x embedding dim${logits.head.transposed ? ', stored transposed' : ''}), found dims [${W.dims}]`);
    }
    if (logits.head.bias !== undefined) {
      const b = index.readWeight(logits.head.bias);
      if (b.data.length !== logits.classes) throw new RangeError(`${where}: logits.head.bias '${logits.head.bias}': expected ${logits.classes} values, found dims [${b.dims}]`);
    }
  }
}

function checkDeclaredSize(index: GraphIndex, field: string, tensor: string, n: number): void {
  const shape = index.shapeOf(tensor);
  if (!shape || shape.slice(1).some((d) => typeof d !== 'number')) return;
  const size = (shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  if (size !== n) throw new RangeError(`${index.where}: ${field}: the card says ${n}, the graph declares '${tensor}' with dims [${shape.map((d) => d ?? '?')}] (${size} values per image)`);
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read the model card: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(file, `expected a JSON model card: ${(err as Error).message}`);
  }
}

// A card is the user's own configuration and may name a model anywhere (`embmap inspect CARD`
// says where it leads); untrusted model packages are the importers' concern (weight manifests).
function onnxPathOf(cardPath: string, onnxFile: string): string {
  const resolved = path.resolve(path.dirname(cardPath), onnxFile);
  if (!fs.existsSync(resolved)) throw new FileFormatError(cardPath, `onnx: expected an existing ONNX file, '${onnxFile}' resolves to ${resolved}, which does not exist`);
  return resolved;
}
