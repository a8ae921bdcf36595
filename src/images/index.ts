// Public surface of image preprocessing.
export type { DecodedImage, InputSpec } from './types';
export { decodeImage, decodeImageBytes, imageToTensor, inputSize, normaliseInto, preprocessInto, specKey } from './preprocess';
export { type RawImage, decodePnm, isPnm } from './pnm';
