// The alignment stage before extraction: each image is read, hashed and looked up in the cache;
// the rest are decoded, detected in batches and warped to aligned crops (cached as PNG), which the
// extraction then reads in place of the images. The detector is only opened when some image is
// not cached, so a second network over the same images reuses the first one's detection pass.
// Every image without a usable face is reported with its reason and counted; with fallback
// 'centre' it still gets a crop (a centred one, flagged as such), with 'skip' it gets none.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { assertInteger, assertOneOf, fail } from '../core/validate';
import { decodeImageBytes, sharp } from '../images/preprocess';
import type { DecodedImage } from '../images/types';
import { Progress, type ProgressStream } from '../extract/progress';
import { type AlignPolicy, CANVAS, FAILURE_KINDS, type FailureKind, TEMPLATE, alignFace, checkPolicy } from './align';
import { AlignCache, type AlignRecord } from './cache';
import { type DetectorOptions, FaceDetector } from './detector';
import type { Similarity } from './similarity';
import { warpSimilarity } from './warp';

export const FALLBACKS = ['skip', 'centre'] as const;
export type Fallback = (typeof FALLBACKS)[number];

export interface AlignOptions extends DetectorOptions, AlignPolicy {
  /** Cache folder (created if missing). */
  cache: string;
  /** An image without a usable face: 'skip' it (default) or use a centred crop; reported either way. */
  fallback?: Fallback;
  /** Images per detector run (default 16). */
  batch?: number;
  progress?: ProgressStream | null;
  /** Images of more pixels are not decoded (default MAX_PIXELS). */
  maxPixels?: number;
}

export interface AlignedImage {
  /** The crop to embed (absent: skip the image). */
  crop?: string;
  /** Why no face was aligned (with a crop: the centred fallback was used). */
  failure?: { kind: FailureKind; reason: string };
}

export interface AlignSummary {
  images: number;
  /** Images with an aligned face. */
  aligned: number;
  /** Images without a usable face given the centred crop, and images left out. */
  fallback: number;
  skipped: number;
  /** Failures by kind, and each image without a usable face (`fallback`: given the centred crop). */
  failures: Partial<Record<FailureKind, number>>;
  reports: { index: number; file: string; kind: FailureKind; reason: string; fallback: boolean }[];
  /** Aligned images where the detector found more than one face. */
  severalFaces: number;
  /** Images answered by the cache, and images the detector ran on (0: it was not even opened). */
  fromCache: number;
  detected: number;
  cache: string;
  seconds: number;
}

// Settings of the crop itself: part of the cache key. Bump when the crop for the same inputs changes.
// 2: the key no longer holds the fallback setting (an image without a usable face always gets its
// centred crop cached; the setting only decides whether it is used), so version-1 folders are left unused.
const CROP_VERSION = 2;
// The fallback maps the centred square of this fraction of the shorter side onto the canvas: the
// median scale of the aligned faces on the demo's LFW photos (eyes 43 px apart in 250x250).
const FALLBACK_FRACTION = 1.1;

/** The aligned crop (or its reason) for each file, in order; see the file comment. */
export async function alignImages(files: string[], options: AlignOptions): Promise<{ images: AlignedImage[]; summary: AlignSummary }> {
  const t0 = Date.now();
  if (typeof options?.cache !== 'string' || options.cache === '') fail(TypeError, 'align.cache', 'a folder path for the aligned crops', options?.cache);
  const policy = checkPolicy('align', options);
  const fallback = options.fallback ?? 'skip';
  const batch = options.batch ?? 16;
  assertOneOf('align.fallback', fallback, FALLBACKS);
  assertInteger('align.batch', batch, 1, 1024);
  sharp(); // a missing sharp is an error here, not every image recorded as unreadable
  // What changes the crops, not what is done with the faces it could not find.
  const key = { CROP_VERSION, canvas: CANVAS, template: TEMPLATE, policy, detector: FaceDetector.filesHash(options) };
  const cache = new AlignCache(options.cache, key);
  const summary: AlignSummary = { images: files.length, aligned: 0, fallback: 0, skipped: 0, failures: {}, reports: [], severalFaces: 0, fromCache: 0, detected: 0, cache: cache.dir, seconds: 0 };
  const images: AlignedImage[] = new Array(files.length);
  const progress = options.progress ? new Progress(options.progress, files.length, 0) : undefined;
  let detector: FaceDetector | undefined;

  const settle = (i: number, record: AlignRecord, hash: string | undefined) => {
    const useCrop = record.crop && (!record.failure || fallback === 'centre');
    images[i] = { ...(useCrop ? { crop: cache.cropPath(hash!) } : {}), ...(record.failure ? { failure: record.failure } : {}) };
    if (record.failure) {
      summary.failures[record.failure.kind] = (summary.failures[record.failure.kind] ?? 0) + 1;
      if (useCrop) summary.fallback++;
      else summary.skipped++;
      summary.reports.push({ index: i, file: files[i], ...record.failure, fallback: useCrop });
    } else {
      summary.aligned++;
      if (record.faces > 1) summary.severalFaces++;
    }
  };

  try {
    for (let start = 0; start < files.length; start += batch) {
      const todo: { i: number; hash: string; image: DecodedImage }[] = [];
      await Promise.all(files.slice(start, start + batch).map(async (file, k) => {
        const i = start + k;
        try {
          const bytes = await fs.promises.readFile(file).catch((err: NodeJS.ErrnoException) => {
            throw new Error(`cannot read the image: ${err.code ?? err.message}`);
          });
          const hash = createHash('sha256').update(bytes).digest('hex');
          const cached = cache.get(hash);
          if (cached) {
            summary.fromCache++;
            settle(i, cached, hash);
          } else {
            todo.push({ i, hash, image: await decodeImageBytes(bytes, file, options.maxPixels) });
          }
        } catch (err) {
          const message = (err as Error).message;
          settle(i, { faces: 0, crop: false, failure: { kind: 'unreadable', reason: message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message } }, undefined);
        }
      }));
      if (todo.length) {
        detector ??= await FaceDetector.open(options);
        const found = await detector.detect(todo.map((t) => t.image));
        summary.detected += todo.length;
        for (let k = 0; k < todo.length; k++) {
          const { i, hash, image } = todo[k];
          const a = alignFace(found[k], image.width, image.height, policy);
          let record: AlignRecord, transform: Similarity | undefined;
          if (a.ok) {
            record = { faces: a.faces, face: { score: a.face.score, box: a.face.box, keypoints: a.face.keypoints, residual: a.residual }, crop: true };
            transform = a.transform;
          } else {
            // Cached whatever the fallback setting, so either setting reuses this pass.
            transform = centred(image);
            record = { faces: a.faces, failure: { kind: a.kind, reason: a.reason }, crop: true };
          }
          cache.put(hash, record, transform && (await png(warpSimilarity(image, transform, CANVAS))));
          settle(i, record, hash);
        }
      }
      progress?.update(Math.min(start + batch, files.length));
    }
    progress?.finish();
  } finally {
    await detector?.close();
  }
  summary.reports.sort((a, b) => a.index - b.index);
  summary.failures = Object.fromEntries(FAILURE_KINDS.flatMap((k) => (summary.failures[k] ? [[k, summary.failures[k]]] : [])));
  summary.seconds = (Date.now() - t0) / 1000;
  return { images, summary };
}

/** The fallback: the image's centred square of FALLBACK_FRACTION of its shorter side onto the canvas. */
function centred(image: DecodedImage): Similarity {
  const a = CANVAS / (FALLBACK_FRACTION * Math.min(image.width, image.height));
  return { a, b: 0, tx: (CANVAS - 1) / 2 - (a * (image.width - 1)) / 2, ty: (CANVAS - 1) / 2 - (a * (image.height - 1)) / 2 };
}

async function png(image: DecodedImage): Promise<Uint8Array> {
  return sharp()(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png({ compressionLevel: 3 }).toBuffer();
}
