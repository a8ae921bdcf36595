// One opened model, handed around instead of paths: the card, the ONNX bytes, the parsed graph and
// its SHA-256, read and checked once per process. Handles are built in one place (modelHandle) from
// whatever model resolution gives (resolve.ts / load.ts), reusing the file resolution read.
import { createHash } from 'node:crypto';
import { GraphIndex } from '../onnx/graph';
import { decodeModel, readModelBytes } from '../onnx/proto';
import type { OnnxModel } from '../onnx/types';
import { checkCardAgainstModel, type LoadedCard, resolveModel, takeParsedModel } from './load';

export interface ModelHandle {
  readonly loaded: LoadedCard;
  readonly bytes: Buffer;
  readonly model: OnnxModel;
  readonly index: GraphIndex;
  /** SHA-256 of the ONNX file: identifies the model in checkpoints and cluster runs. */
  readonly sha256: string;
}

/**
 * `loaded`'s ONNX file, as resolution read it or else read now, with the card checked against its
 * graph (again when resolution did: the card may have been changed since).
 */
export function modelHandle(loaded: LoadedCard): ModelHandle {
  const parsed = takeParsedModel(loaded);
  const bytes = parsed?.bytes ?? readModelBytes(loaded.onnxPath);
  const model = parsed?.model ?? decodeModel(bytes, loaded.onnxPath);
  const index = parsed?.index ?? new GraphIndex(model.graph, loaded.onnxPath);
  checkCardAgainstModel(loaded.card, index);
  return { loaded, bytes, model, index, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** A loaded card, or a card (.json) / model (.onnx) path, as a handle. */
export async function openHandle(model: LoadedCard | string): Promise<ModelHandle> {
  return modelHandle(typeof model === 'string' ? await resolveModel(model) : model);
}
