// Augmented views of an image, for fitting maps on more pairs than there are images. View k of
// image `id` is a random resized crop, a horizontal flip and a mild colour jitter whose parameters
// come from an RNG keyed by (seed, id, k) alone, so a view is the same in any shard, worker or
// order. It is applied to the decoded image once, before each network's own crop, resize and
// normalisation: every network sees the same pixels for a view. View 0 is the plain image, so K
// views of an image are the image itself and K - 1 augmentations of it.
import { createHash } from 'node:crypto';
import { assertInteger, fail } from '../core/validate';
import { makeRng } from '../evaluate/split';
import type { DecodedImage } from './types';

/** The parameters of one augmentation, independent of the image's size. */
export interface ViewParams {
  /** Area of the crop as a fraction of the image's, and its aspect ratio (width / height). */
  scale: number;
  ratio: number;
  /** Where the crop sits in the room left for it: 0 = left / top, 1 = right / bottom. */
  x: number;
  y: number;
  flip: boolean;
  /** Colour factors, 1 = unchanged. */
  brightness: number;
  contrast: number;
  saturation: number;
}

export interface ViewOptions {
  /** Views per image, the plain image included (1: the plain image only). */
  count: number;
  /** Seed of the augmentations (default 0). */
  seed?: number;
}

/** More views than this is a mistake, not a plan: each one is a full pass of every network. */
export const MAX_VIEWS = 1000;

// torchvision's RandomResizedCrop ranges, the scale's lower end raised (mild: a view keeps most of the object).
const SCALE: [number, number] = [0.35, 1];
const RATIO: [number, number] = [3 / 4, 4 / 3];
// ColorJitter(0.2, 0.2, 0.2).
const JITTER = 0.2;

/** Checks `options` (named `name` in errors) and returns it with its defaults. */
export function checkViews(name: string, options: unknown): Required<ViewOptions> {
  if (typeof options !== 'object' || options === null) fail(TypeError, name, '{ count, seed? }', options);
  const { count, seed = 0 } = options as ViewOptions;
  assertInteger(`${name}.count`, count, 1, MAX_VIEWS);
  assertInteger(`${name}.seed`, seed, 0, 2 ** 32 - 1);
  return { count, seed };
}

/** The id of view k of an image in sidecars: `id#v3`. */
export function viewId(id: string, index: number): string {
  return `${id}#v${index}`;
}

/** The image id a row id names (the id itself when it names no view). */
export function imageOfViewId(id: string): string {
  const m = /#v\d+$/.exec(id);
  return m ? id.slice(0, m.index) : id;
}

/** View `index` of image `id` under `seed`: undefined for view 0 (the plain image). */
export function viewParams(seed: number, id: string, index: number): ViewParams | undefined {
  if (index === 0) return undefined;
  const key = createHash('sha256').update(`${seed}\0${id}\0${index}`).digest();
  const rng = makeRng(key.readUInt32LE(0));
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rng();
  return {
    scale: uniform(...SCALE),
    ratio: Math.exp(uniform(Math.log(RATIO[0]), Math.log(RATIO[1]))),
    x: rng(),
    y: rng(),
    flip: rng() < 0.5,
    brightness: uniform(1 - JITTER, 1 + JITTER),
    contrast: uniform(1 - JITTER, 1 + JITTER),
    saturation: uniform(1 - JITTER, 1 + JITTER),
  };
}

/** Each item as `count` items (ids `id#vK`, in view order, image by image), each with its view's parameters. */
export function expandViews<T extends { id: string }>(items: readonly T[], options: ViewOptions): (T & { view?: ViewParams })[] {
  const { count, seed } = checkViews('views', options);
  return items.flatMap((it) => Array.from({ length: count }, (_, k) => {
    const view = viewParams(seed, it.id, k);
    return { ...it, id: viewId(it.id, k), ...(view ? { view } : {}) };
  }));
}

/** The view's pixels: the crop (flipped), then brightness, contrast (about the crop's mean grey) and saturation, each clamped to 0..255. */
export function applyView(image: DecodedImage, v: ViewParams): DecodedImage {
  const { width: W, height: H, data: src } = image;
  const area = W * H * v.scale;
  const w = Math.max(1, Math.min(W, Math.round(Math.sqrt(area * v.ratio))));
  const h = Math.max(1, Math.min(H, Math.round(Math.sqrt(area / v.ratio))));
  const left = Math.min(W - w, Math.floor(v.x * (W - w + 1)));
  const top = Math.min(H - h, Math.floor(v.y * (H - h + 1)));
  const clamp = (x: number) => (x < 0 ? 0 : x > 255 ? 255 : x);
  const px = new Float32Array(w * h * 3);
  let grey = 0;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const s = ((top + r) * W + left + (v.flip ? w - 1 - c : c)) * 3, o = (r * w + c) * 3;
      for (let k = 0; k < 3; k++) px[o + k] = clamp(src[s + k] * v.brightness);
      grey += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
    }
  }
  const mean = grey / (w * h);
  const out = new Uint8Array(w * h * 3);
  for (let o = 0; o < out.length; o += 3) {
    const r = clamp(mean + v.contrast * (px[o] - mean)), g = clamp(mean + v.contrast * (px[o + 1] - mean)), b = clamp(mean + v.contrast * (px[o + 2] - mean));
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    out[o] = Math.round(clamp(l + v.saturation * (r - l)));
    out[o + 1] = Math.round(clamp(l + v.saturation * (g - l)));
    out[o + 2] = Math.round(clamp(l + v.saturation * (b - l)));
  }
  return { data: out, width: w, height: h };
}

/** Rows' groups by image when any row id names a view (`id#v3`): the views of an image must stay in one fold; else undefined. */
export function viewGroups(ids: readonly string[]): string[] | undefined {
  return ids.some((id) => imageOfViewId(id) !== id) ? ids.map(imageOfViewId) : undefined;
}
