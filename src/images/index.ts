// Public surface of image preprocessing.
export { type DecodedImage, type InputSpec, decodeImage, decodeImageBytes, imageToTensor, inputSize, normaliseInto, preprocessInto, specKey } from './preprocess';
export { type RawImage, decodePnm, isPnm } from './pnm';
