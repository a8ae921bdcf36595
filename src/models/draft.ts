// A card drafted for an ONNX file from what is known, each field with where it came from: flags
// (a preset, a named embedding) over the user's card, over the file's metadata (an `embmap.card`
// entry holding a partial card), over the graph (input name, layout, size; the embedding and
// logits by structure, src/onnx/outputs.ts). What nothing settles is listed as missing, never
// filled with a default: a wrong normalisation or embedding tensor changes every result.
import * as path from 'node:path';
import { type Dim, GraphIndex } from '../onnx/graph';
import { type OutputAnalysis, analyseOutputs } from '../onnx/outputs';
import type { OnnxModel } from '../onnx/types';
import type { Layout } from './card';
import { PRESET_NAMES, preset as presetByName } from './presets';

export interface DraftOptions {
  /** A preset name (src/models/presets.ts): preprocessing and the network's role. */
  preset?: string;
  /** The embedding tensor, by name. */
  embedding?: string;
}

export interface Draft {
  /** The card as far as it is known (fields still missing are absent). */
  card: Record<string, unknown> & { input: Record<string, unknown> };
  /** Where each field came from: 'card', 'metadata', 'graph', 'preset NAME', 'flag'. */
  origins: Record<string, string>;
  /** Fields nothing settles, e.g. 'input.mean'. */
  missing: string[];
  analysis: OutputAnalysis;
  /** The file's metadata_props. */
  metadata: Record<string, string>;
}

/** Preprocessing fields a run needs and only a card, metadata, a preset or a flag can give. */
export const PREPROCESSING = ['channels', 'scale', 'mean', 'std', 'resize'] as const;
/** The metadata_props key holding a partial card (JSON). */
export const METADATA_KEY = 'embmap.card';

export function draftCard(partial: Record<string, unknown>, model: OnnxModel, onnxPath: string, options: DraftOptions = {}): Draft {
  const index = new GraphIndex(model.graph, onnxPath);
  const metadata = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const meta = metadataCard(metadata, onnxPath);
  const origins: Record<string, string> = {};
  const given = (partial.input ?? {}) as Record<string, unknown>;
  const metaInput = (meta.input ?? {}) as Record<string, unknown>;
  const input: Record<string, unknown> = {};
  const take = (key: string, ...sources: [string, Record<string, unknown>][]) => {
    for (const [origin, from] of sources) {
      if (from[key] !== undefined) {
        input[key] = from[key];
        origins[`input.${key}`] = origin;
        return;
      }
    }
  };
  const p = options.preset === undefined ? undefined : presetByName(options.preset);
  // A preset is the whole normalisation: a card's whitening does not survive it.
  const presetInput: Record<string, unknown> = p ? { ...p.input, whiten: p.input.whiten ?? false } : {};
  const presetOrigin = `preset ${p?.name}`;
  const fromGraph = graphInput(index, (given.name ?? metaInput.name) as string | undefined);
  const graph: Record<string, unknown> = { name: fromGraph.name, layout: fromGraph.layout, ...(fromGraph.size ? { size: fromGraph.size } : {}) };
  for (const key of ['name', 'layout', 'size']) take(key, ['card', given], ['metadata', metaInput], ['graph', graph], [presetOrigin, p ? { size: p.size } : {}]);
  for (const key of [...PREPROCESSING, 'whiten']) take(key, [presetOrigin, presetInput], ['card', given], ['metadata', metaInput]);
  for (const key of ['crop', 'cropCentre']) take(key, ['card', given], ['metadata', metaInput]);
  for (const key of Object.keys(given)) if (input[key] === undefined) input[key] = given[key];

  const card: Draft['card'] = {
    id: partial.id ?? meta.id ?? path.basename(onnxPath).replace(/\.onnx$/i, ''),
    onnx: partial.onnx ?? path.basename(onnxPath),
    ...Object.fromEntries(Object.entries(partial).filter(([k]) => !['input', 'embedding', 'logits'].includes(k))),
    input,
  };
  const cardEmbedding = (partial.embedding ?? meta.embedding) as { tensor?: unknown; dim?: unknown } | undefined;
  const named = options.embedding ?? (typeof cardEmbedding?.tensor === 'string' ? cardEmbedding.tensor : undefined);
  const analysis = analyseOutputs(index, { ...(p ? { role: p.role } : {}), ...(named !== undefined ? { embedding: named } : {}) });
  if (options.embedding !== undefined) {
    card.embedding = { tensor: options.embedding, ...(analysis.embedding?.dim !== undefined ? { dim: analysis.embedding.dim } : {}) };
    origins['embedding.tensor'] = 'flag';
  } else if (cardEmbedding !== undefined) {
    card.embedding = { ...(analysis.embedding?.dim !== undefined ? { dim: analysis.embedding.dim } : {}), ...cardEmbedding };
    origins['embedding.tensor'] = partial.embedding !== undefined ? 'card' : 'metadata';
  } else if (analysis.embedding) {
    const { tensor, dim } = analysis.embedding;
    card.embedding = { tensor, ...(dim !== undefined ? { dim } : {}) };
    origins['embedding.tensor'] = p && analysis.readings.some((r) => r.why.includes('the preset describes')) ? `graph, read as ${p.role} (${presetOrigin})` : 'graph';
  }
  // Logits: the card's (null: none), else the classifier over the chosen embedding, if the graph has one.
  const cardLogits = 'logits' in partial ? partial.logits : meta.logits;
  if (cardLogits !== undefined) {
    if (cardLogits !== null) card.logits = cardLogits;
    origins.logits = 'logits' in partial ? 'card' : 'metadata';
  } else if (analysis.logits && card.embedding) {
    card.logits = analysis.logits;
    origins.logits = 'graph';
  }
  const missing = [
    ...['size', ...PREPROCESSING].filter((k) => input[k] === undefined).map((k) => `input.${k}`),
    ...(card.embedding ? [] : ['embedding.tensor']),
  ];
  return { card, origins, missing, analysis, metadata };
}

/** What a draft lacks and every way to give it, for errors. */
export function missingMessage(draft: Draft, where: string): string {
  const lines = [`${where}: cannot run this model without ${draft.missing.join(', ')}: neither a card, the graph nor its metadata says`];
  if (draft.missing.includes('embedding.tensor')) lines.push(`  embedding: ${draft.analysis.unsettled ?? 'no candidate'}; name it with --embedding TENSOR or in a card (embedding.tensor), or use a preset that says whether the network is a classifier or an embedding network`);
  if (draft.missing.some((m) => m.startsWith('input.'))) lines.push(`  preprocessing: give a card (embmap inspect MODEL.onnx shows a draft), --preset NAME (${PRESET_NAMES.join(', ')}), or let 'embmap card probe MODEL.onnx --faces|--classes' find and write one`);
  return lines.join('\n');
}

function metadataCard(metadata: Record<string, string>, where: string): Record<string, unknown> {
  const text = metadata[METADATA_KEY];
  if (text === undefined) return {};
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new RangeError(`${where}: metadata '${METADATA_KEY}': expected a JSON card, ${(err as Error).message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new RangeError(`${where}: metadata '${METADATA_KEY}': expected a JSON object (a partial card)`);
  return obj as Record<string, unknown>;
}

/** Where a 4-d image input keeps its 3 channels; undefined when neither or both places fit. */
export function layoutOf(dims: Dim[] | undefined): Layout | undefined {
  const nchw = dims?.length === 4 && dims[1] === 3, nhwc = dims?.length === 4 && dims[3] === 3;
  return nchw === nhwc ? undefined : nchw ? 'NCHW' : 'NHWC';
}

function graphInput(index: GraphIndex, name: string | undefined): { name: string; layout: Layout; size: [number, number] | undefined } {
  const inputs = index.inputs();
  const chosen = name === undefined ? inputs[0] : inputs.find((v) => v.name === name);
  if (!chosen) throw new RangeError(`${index.where}: expected an image input${name ? ` named '${name}'` : ''}, the graph has inputs ${inputs.map((v) => `'${v.name}'`).join(', ') || 'none'}`);
  if (name === undefined && inputs.length > 1) {
    throw new RangeError(`${index.where}: expected one image input, the graph has ${inputs.length} (${inputs.map((v) => `'${v.name}'`).join(', ')}); name it in a card (input.name)`);
  }
  const dims = index.shapeOf(chosen.name!) ?? [];
  const layout = layoutOf(dims);
  if (!layout) {
    const why = dims.length === 4 && dims[1] === 3 ? 'both N x 3 x H x W and N x H x W x 3 fit: name the layout in a card (input.layout)' : 'expected N x 3 x H x W or N x H x W x 3 images';
    throw new RangeError(`${index.where}: input '${chosen.name}': ${why}, the graph declares [${dims.map((d) => d ?? '?')}]`);
  }
  const [h, w] = layout === 'NCHW' ? [dims[2], dims[3]] : [dims[1], dims[2]];
  return { name: chosen.name!, layout, size: typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined };
}
