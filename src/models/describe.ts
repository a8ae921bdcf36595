// An ONNX model described for a user bringing their own: its inputs and outputs, what each output
// is read as and why, the candidate embedding tensors, the metadata it carries, and the card
// embmap would use with each field's origin and every missing field marked (`embmap inspect`).
import { GraphIndex, type Dim } from '../onnx/graph';
import { readModel } from '../onnx/proto';
import { dataTypeName } from '../onnx/tensor';
import { type Draft, type DraftOptions, draftCard, layoutOf, missingMessage } from './draft';

export interface TensorInfo {
  name: string;
  dims: Dim[] | undefined;
  dtype: string;
}

export interface ModelDescription {
  file: string;
  producer: string;
  opsets: string[];
  inputs: (TensorInfo & { layout?: string })[];
  outputs: (TensorInfo & { reading: string })[];
  candidates: Draft['analysis']['candidates'];
  metadata: Record<string, string>;
  card: Draft['card'];
  origins: Draft['origins'];
  missing: string[];
  /** What to do next: how to give what is missing, or that the card is complete. */
  next: string;
}

/** Reads the model at `file` and drafts its card; never throws for a card that is incomplete. */
export function describeOnnx(file: string, options: DraftOptions = {}): ModelDescription {
  const model = readModel(file);
  const index = new GraphIndex(model.graph, file);
  const info = (name: string): TensorInfo => {
    const type = index.elemTypeOf(name);
    return { name, dims: index.shapeOf(name), dtype: type === undefined ? 'undeclared' : dataTypeName(type) };
  };
  const draft = draftCard({}, model, file, options);
  return {
    file,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' ') || 'not recorded',
    opsets: (model.opsetImport ?? []).map((o) => `${o.domain || 'ai.onnx'} ${o.version}`),
    inputs: index.inputs().map((v) => {
      const t = info(v.name!);
      const layout = layoutOf(t.dims);
      return layout ? { ...t, layout } : t;
    }),
    outputs: index.outputNames().map((name) => {
      const r = draft.analysis.readings.find((x) => x.output === name);
      return { ...info(name), reading: r ? `${r.kind}: ${r.why}` : 'not read' };
    }),
    candidates: draft.analysis.candidates,
    metadata: draft.metadata,
    card: draft.card,
    origins: draft.origins,
    missing: draft.missing,
    next: draft.missing.length ? missingMessage(draft, file) : `complete: embmap runs ${file} with this card (fields from a preset or flag are marked)`,
  };
}
