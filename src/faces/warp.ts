// The aligned crop: every output pixel samples the source image through the inverse of the
// image-to-crop similarity, bilinearly, black outside the image (as ArcFace-family preprocessing
// pads). Pixel (i, j) is the point (i, j), OpenCV's convention, which the landmark templates use.
import { assertInteger } from '../core/validate';
import type { DecodedImage } from '../images/types';
import { type Similarity, applySimilarity, invertSimilarity } from './similarity';

/** A size x size RGB crop: crop(u, v) = image(T^-1(u, v)), with T mapping image to crop coordinates. */
export function warpSimilarity(image: DecodedImage, t: Similarity, size: number): DecodedImage {
  assertInteger('size', size, 1, 4096);
  const inv = invertSimilarity(t);
  const { data: src, width: w, height: h } = image;
  const out = new Uint8Array(size * size * 3);
  const at = (x: number, y: number, c: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : src[(y * w + x) * 3 + c]);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const [x, y] = applySimilarity(inv, [u, v]);
      if (x <= -1 || y <= -1 || x >= w || y >= h) continue;
      const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
      const o = (v * size + u) * 3;
      for (let c = 0; c < 3; c++) {
        const top = at(x0, y0, c) * (1 - fx) + at(x0 + 1, y0, c) * fx;
        const bottom = at(x0, y0 + 1, c) * (1 - fx) + at(x0 + 1, y0 + 1, c) * fx;
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { data: out, width: size, height: size };
}
