// The image types other modules share, apart from preprocess.ts so that declarations using them
// need no sharp (an optional peer dependency).
import type { ModelCard } from '../models/card';

/** What preprocessing needs from a card: its input section without the tensor name. */
export type InputSpec = Omit<ModelCard['input'], 'name'>;

/** An 8-bit sRGB image, 3 channels interleaved (RGB). */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}
