// Sample-size curves: how a fitted map's drop falls with the number of distinct fitting images.
// Each size takes the first n images of one seeded order of the pool (so the sizes are nested,
// and a view always goes with its image), and a trend linear in ln n is fitted by least squares
// (float64) to the measured points; its value far past them is an extrapolation and is labelled so.
import { assertInteger, fail } from '../core/validate';
import { makeRng, permutation } from '../evaluate/split';

/** ImageNet's training set (ILSVRC-2012), what the paper fitted its maps on. */
export const IMAGENET_TRAIN_IMAGES = 1_281_167;

/** The requested sizes below `available`, sorted and distinct, then `available` itself (every image): a size past it is capped there. */
export function curveSizes(requested: readonly number[], available: number): number[] {
  if (!Array.isArray(requested)) fail(TypeError, 'curve', 'a list of numbers of images', requested);
  requested.forEach((n, i) => assertInteger(`curve[${i}]`, n, 2));
  return [...new Set(requested.filter((n) => n < available)), available].sort((a, b) => a - b);
}

/** For each size, the fit rows whose image is among the first n of a seeded order of the `images` distinct images. */
export function nestedRows(imageOf: Int32Array, images: number, sizes: readonly number[], seed: number): Int32Array[] {
  const rank = new Int32Array(images);
  permutation(images, makeRng(seed)).forEach((image, r) => (rank[image] = r));
  return sizes.map((n) => Int32Array.from(imageOf.keys()).filter((row) => rank[imageOf[row]] < n));
}

export interface LogTrend {
  /** y = intercept + slope * ln(n). */
  intercept: number;
  slope: number;
  /** Coefficient of determination over the points it was fitted to. */
  r2: number;
}

/** Least-squares line in ln n through (n, y) points (at least two distinct n). */
export function fitLogTrend(points: readonly { n: number; y: number }[]): LogTrend {
  const xs = points.map((p) => Math.log(p.n)), ys = points.map((p) => p.y);
  const k = points.length;
  const mx = xs.reduce((a, b) => a + b, 0) / k, my = ys.reduce((a, b) => a + b, 0) / k;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < k; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  if (!(sxx > 0)) throw new RangeError(`points: expected at least two distinct sizes to fit a trend, received ${k} point(s)`);
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope, r2: syy > 0 ? (sxy * sxy) / (sxx * syy) : 1 };
}

export function trendAt(t: LogTrend, n: number): number {
  return t.intercept + t.slope * Math.log(n);
}
