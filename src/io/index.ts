// Public surface of embedding and tensor file I/O.
export { writeFileAtomic } from './atomic';
export { FileFormatError } from './binary';
export { type NpyReader, openNpy, readNpy, writeNpy } from './npy';
export { type SafetensorsFile, type Tensor, type TensorInput, readSafetensors, writeSafetensors } from './safetensors';
export {
  EMBEDDINGS_TENSOR,
  type EmbeddingSet,
  type LoadedEmbeddingSet,
  type PairedEmbeddings,
  assertEmbeddingSet,
  assertFiniteRows,
  loadEmbeddings,
  pairById,
  readSidecar,
  readableSidecarPath,
  saveEmbeddings,
  sidecarPath,
} from './embeddings';
