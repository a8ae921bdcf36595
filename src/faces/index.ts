export { CANVAS, FAILURE_KINDS, PICKS, TEMPLATE, alignFace, type AlignPolicy, type Alignment, type FailureKind, type Pick } from './align';
export { AlignCache, type AlignRecord } from './cache';
export { FaceDetector, type Box, type DetectorOptions, type Face } from './detector';
export { applySimilarity, fitSimilarity, invertSimilarity, residualRms, type Point, type Similarity } from './similarity';
export { FALLBACKS, alignImages, type AlignOptions, type AlignSummary, type AlignedImage, type Fallback } from './stage';
export { warpSimilarity } from './warp';
