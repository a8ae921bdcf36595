// Images to model input: decode once (JPEG, PNG, WebP, TIFF, GIF via sharp; PGM/PPM here) to 8-bit
// sRGB with 3 channels (greyscale replicated, alpha flattened onto black, EXIF orientation applied),
// then per model: resize by the card's policy and normalise straight into a float32 batch buffer
// at the image's slot, in the model's layout and channel order.
import * as fs from 'node:fs';
import type SharpLib from 'sharp';
import type { Sharp } from 'sharp';
import { optional } from '../core/optional';
import { assertInteger, fail } from '../core/validate';
import { FileFormatError } from '../io/binary';
import { decodePnm, isPnm } from './pnm';
import type { DecodedImage, InputSpec } from './types';

/** sharp (an optional peer dependency), loaded on first use. */
export function sharp(): typeof SharpLib {
  return optional<typeof SharpLib>('sharp', 'reading images');
}

/** Values per image in a model's input tensor. */
export function inputSize(spec: InputSpec): number {
  return 3 * spec.size[0] * spec.size[1];
}

/** A stable key: models whose inputs share it share one preprocessed tensor. */
export function specKey(spec: InputSpec): string {
  return JSON.stringify([spec.size, spec.layout, spec.channels, spec.scale, spec.mean, spec.std, spec.resize, spec.crop ?? 1, spec.cropCentre ?? [0.5, 0.5], spec.whiten ?? false]);
}

/**
 * Images of more pixels are refused before their pixels are decoded: a 640 KB PNG can claim 15000²,
 * 675 MB as 8-bit RGB. 40 MP (120 MB decoded) keeps a decode worker within about 300 MB.
 */
export const MAX_PIXELS = 40_000_000;

/** Reads and decodes an image file. A missing, unreadable, corrupt or too large (`maxPixels`) file rejects with an error naming it. */
export async function decodeImage(file: string, maxPixels = MAX_PIXELS): Promise<DecodedImage> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot read the image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decodeImageBytes(bytes, file, maxPixels);
}

export async function decodeImageBytes(bytes: Uint8Array, file: string, maxPixels = MAX_PIXELS): Promise<DecodedImage> {
  assertInteger('maxPixels', maxPixels, 1);
  if (bytes.length === 0) throw new FileFormatError(file, 'expected an image, found an empty file');
  let pipeline: Sharp;
  if (isPnm(bytes)) {
    const pnm = decodePnm(bytes, file, maxPixels);
    pipeline = sharp()(pnm.data, { raw: { width: pnm.width, height: pnm.height, channels: pnm.channels } });
  } else {
    // failOn 'warning' (sharp's default) turns truncated or damaged data into an error, not a grey image.
    pipeline = sharp()(bytes, { failOn: 'warning', limitInputPixels: maxPixels }).autoOrient();
  }
  try {
    const { data, info } = await pipeline.flatten({ background: '#000000' }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion to sRGB, found ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    // libvips' messages span lines; a skip reason is one line.
    const message = (err as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
    if (/exceeds pixel limit/.test(message)) {
      const { width, height } = await sharp()(bytes).metadata().catch(() => ({ width: undefined, height: undefined }));
      const size = width && height ? `${width} x ${height} = ${width * height} pixels` : 'more pixels';
      throw new FileFormatError(file, `expected an image of at most ${maxPixels} pixels (the decode limit, --max-pixels), found ${size}`);
    }
    // sharp does not pass on libvips' warning text; say what such a warning means here.
    const hint = /Warning treated as error/.test(message) ? 'damaged or truncated image data: ' : '';
    throw new FileFormatError(file, `cannot decode the image: ${hint}${message}`);
  }
}

/**
 * Keeps the `spec.crop` fraction of each side (if below 1) around `spec.cropCentre` (default the centre), resizes by `spec.resize`
 * ('crop': shorter side to the input size then centre crop; 'stretch': to the input size
 * ignoring aspect; 'pad': longer side to the input size, centred on black) and writes the
 * normalised values into `out` from `offset` (inputSize(spec) values).
 */
export async function preprocessInto(image: DecodedImage, spec: InputSpec, out: Float32Array, offset: number): Promise<void> {
  const n = inputSize(spec);
  assertInteger('offset', offset, 0, out.length - n);
  const [h, w] = spec.size;
  let pixels = image.data;
  const crop = spec.crop ?? 1;
  const [fx, fy] = spec.cropCentre ?? [0.5, 0.5];
  if (image.width !== w || image.height !== h || crop < 1) {
    const fit = spec.resize === 'crop' ? 'cover' : spec.resize === 'stretch' ? 'fill' : 'contain';
    const cw = Math.max(1, Math.round(image.width * crop)), ch = Math.max(1, Math.round(image.height * crop));
    const { data } = await sharp()(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .extract({ left: place(image.width, cw, fx), top: place(image.height, ch, fy), width: cw, height: ch })
      .resize(w, h, { fit, position: 'centre', background: '#000000' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    pixels = data;
  }
  normaliseInto(pixels, spec, out, offset);
}

/** The start of a window of `size` centred at fraction `at` of `side`, kept inside it (exactly centred at 0.5, as before). */
function place(side: number, size: number, at: number): number {
  return at === 0.5 ? (side - size) >> 1 : Math.max(0, Math.min(side - size, Math.round(at * side - size / 2)));
}

/** One image file as a model's input tensor (1 x ...): the building block for single-image use. */
export async function imageToTensor(file: string, spec: InputSpec): Promise<Float32Array> {
  const out = new Float32Array(inputSize(spec));
  await preprocessInto(await decodeImage(file), spec, out, 0);
  return out;
}

/**
 * value = (pixel * scale - mean[c]) / std[c] for model channel c (mean and std are in the model's
 * channel order), read from interleaved RGB `pixels` of the input size; then, with `whiten`, the
 * image's values standardised: (v - mean(v)) / max(std(v), 1 / sqrt(n)) (FaceNet's prewhiten).
 */
export function normaliseInto(pixels: Uint8Array, spec: InputSpec, out: Float32Array, offset: number): void {
  const [h, w] = spec.size;
  const plane = h * w;
  if (pixels.length !== plane * 3) fail(RangeError, 'pixels', `${plane * 3} bytes (${h} x ${w} x 3)`, pixels);
  for (let c = 0; c < 3; c++) {
    const src = spec.channels === 'RGB' ? c : 2 - c;
    const a = spec.scale / spec.std[c];
    const b = -spec.mean[c] / spec.std[c];
    if (spec.layout === 'NCHW') {
      const base = offset + c * plane;
      for (let p = 0; p < plane; p++) out[base + p] = pixels[p * 3 + src] * a + b;
    } else {
      for (let p = 0; p < plane; p++) out[offset + p * 3 + c] = pixels[p * 3 + src] * a + b;
    }
  }
  if (spec.whiten) {
    const n = plane * 3;
    const v = out.subarray(offset, offset + n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += v[i];
    const mean = sum / n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
    const inv = 1 / Math.max(Math.sqrt(ss / n), 1 / Math.sqrt(n));
    for (let i = 0; i < n; i++) v[i] = (v[i] - mean) * inv;
  }
}
