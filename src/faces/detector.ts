// Face detection with MediaPipe's BlazeFace (back model), converted from the TF.js files in
// human-models to ONNX in memory when opened (about a second; nothing written). The network
// scores 896 anchors on two grids (16x16 x 2 and 8x8 x 6 over its 256x256 input) and regresses a
// box and six keypoints for each, in input pixels relative to the anchor centre; the decoding and
// MediaPipe's weighted non-maximum suppression are here.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertNumber } from '../core/validate';
import { inputSize, preprocessInto } from '../images/preprocess';
import type { DecodedImage, InputSpec } from '../images/types';
import { FACE_DETECTOR, locate } from '../importers/catalogue';
import { encodeModel } from '../onnx/proto';
import { type Ort, openSession, ort } from '../onnx/runtime';
import type { RuntimeOptions } from '../onnx/session-options';
import type { Point } from './similarity';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A detected face in image pixels (pixel i is the point i). */
export interface Face {
  score: number;
  box: Box;
  /** Eye on the image's left, eye on the right, nose tip, mouth centre, ear (tragion) left, right. */
  keypoints: Point[];
}

export interface DetectorOptions extends RuntimeOptions {
  /** Minimum face score, 0..1 (default 0.75). */
  minScore?: number;
  /** Overlap (IoU) above which detections are merged (default 0.3). */
  iou?: number;
  /** The model.json (weights beside it) instead of the installed package's. */
  from?: string;
}

// The graph's four outputs by the TF.js node that computes them.
const OUTPUTS = { scores16: 'Identity', boxes16: 'Identity_2', scores32: 'Identity_1', boxes32: 'Identity_3' };
const GRIDS = [{ stride: 16, anchors: 2, scores: 'scores16', boxes: 'boxes16' }, { stride: 32, anchors: 6, scores: 'scores32', boxes: 'boxes32' }] as const;
const MIN_SCORE = 0.75;
const IOU = 0.3;
const VALUES = 16; // per anchor: centre offset (2), size (2), six keypoints (12)

export class FaceDetector {
  private readonly spec: InputSpec;
  private readonly minScore: number;
  private readonly iou: number;

  private constructor(private readonly session: Ort.InferenceSession, private readonly inputName: string, size: number, minScore: number, iou: number) {
    // The image letterboxed onto black, values in [-1, 1] as MediaPipe feeds it.
    this.spec = { size: [size, size], layout: 'NCHW', channels: 'RGB', scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], resize: 'pad' };
    this.minScore = minScore;
    this.iou = iou;
  }

  /** SHA-256 of the model files and decoding settings, without converting the model: keys the alignment cache. */
  static filesHash(options: DetectorOptions = {}): string {
    const { file } = locate(FACE_DETECTOR, options.from);
    const hash = createHash('sha256').update(fs.readFileSync(file));
    const manifest = (JSON.parse(fs.readFileSync(file, 'utf8')) as { weightsManifest?: { paths?: string[] }[] }).weightsManifest ?? [];
    for (const shard of manifest.flatMap((m) => m.paths ?? [])) hash.update(fs.readFileSync(path.join(path.dirname(file), shard)));
    return hash.update(JSON.stringify({ minScore: options.minScore ?? MIN_SCORE, iou: options.iou ?? IOU })).digest('hex');
  }

  static async open(options: DetectorOptions = {}): Promise<FaceDetector> {
    const minScore = options.minScore ?? MIN_SCORE, iou = options.iou ?? IOU;
    assertNumber('minScore', minScore, 0, 1);
    assertNumber('iou', iou, 0, 1);
    const { file } = locate(FACE_DETECTOR, options.from);
    // The TF.js importer loads here, not with the package: `import { FaceDetector } from 'embmap'` stays light.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { convertTfjsOutputs } = require('../importers/tfjs') as typeof import('../importers/tfjs');
    const converted = convertTfjsOutputs(file, OUTPUTS);
    const [h, w] = converted.input.size;
    if (h !== 256 || w !== 256) throw new RangeError(`${file}: expected BlazeFace's 256x256 back model, the graph's input is ${h}x${w}`);
    const { session } = await openSession(encodeModel(converted.model), file, options);
    return new FaceDetector(session, converted.input.name, h, minScore, iou);
  }

  /** The faces in each image, best score first (an empty list when none scores minScore). */
  async detect(images: DecodedImage[]): Promise<Face[][]> {
    if (images.length === 0) return [];
    const n = images.length, per = inputSize(this.spec), size = this.spec.size[0];
    const input = new Float32Array(n * per);
    for (let i = 0; i < n; i++) await preprocessInto(images[i], this.spec, input, i * per);
    const out = await this.session.run({ [this.inputName]: new (ort().Tensor)('float32', input, [n, 3, size, size]) });
    return images.map((image, i) => {
      const candidates: Face[] = [];
      for (const g of GRIDS) {
        const cells = size / g.stride, count = cells * cells * g.anchors;
        const scores = (out[g.scores].data as Float32Array).subarray(i * count, (i + 1) * count);
        const raw = (out[g.boxes].data as Float32Array).subarray(i * count * VALUES, (i + 1) * count * VALUES);
        for (let k = 0; k < count; k++) {
          const score = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, scores[k]))));
          if (score < this.minScore) continue;
          const cell = Math.floor(k / g.anchors);
          const ax = ((cell % cells) + 0.5) * g.stride, ay = (Math.floor(cell / cells) + 0.5) * g.stride;
          const r = raw.subarray(k * VALUES, (k + 1) * VALUES);
          const keypoints: Point[] = [];
          for (let p = 0; p < 6; p++) keypoints.push([ax + r[4 + 2 * p], ay + r[5 + 2 * p]]);
          candidates.push({ score, box: { x: ax + r[0] - r[2] / 2, y: ay + r[1] - r[3] / 2, width: r[2], height: r[3] }, keypoints });
        }
      }
      return weightedNms(candidates, this.iou).map((f) => toImage(f, image, size));
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function iouOf(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/** MediaPipe's weighted NMS: each face is the score-weighted mean of the detections overlapping the best one left. */
function weightedNms(candidates: Face[], iou: number): Face[] {
  const left = [...candidates].sort((a, b) => b.score - a.score);
  const faces: Face[] = [];
  while (left.length) {
    const top = left[0];
    const group = left.filter((f) => iouOf(f.box, top.box) > iou);
    const total = group.reduce((s, f) => s + f.score, 0);
    const mean = (get: (f: Face) => number) => group.reduce((s, f) => s + get(f) * f.score, 0) / total;
    faces.push({
      score: top.score,
      box: { x: mean((f) => f.box.x), y: mean((f) => f.box.y), width: mean((f) => f.box.width), height: mean((f) => f.box.height) },
      keypoints: top.keypoints.map((_, p) => [mean((f) => f.keypoints[p][0]), mean((f) => f.keypoints[p][1])]),
    });
    for (const f of group) left.splice(left.indexOf(f), 1);
  }
  return faces;
}

/** From the letterboxed input (continuous coordinates) to the image's pixels. */
function toImage(face: Face, image: DecodedImage, size: number): Face {
  // As sharp's 'contain': the longer side scaled to the input, the other centred.
  const s = size / Math.max(image.width, image.height);
  const px = Math.floor((size - Math.round(image.width * s)) / 2), py = Math.floor((size - Math.round(image.height * s)) / 2);
  const map = ([x, y]: Point): Point => [(x - px) / s - 0.5, (y - py) / s - 0.5];
  const [x, y] = map([face.box.x, face.box.y]);
  return { score: face.score, box: { x, y, width: face.box.width / s, height: face.box.height / s }, keypoints: face.keypoints.map(map) };
}
