// face-api's face recognition network (a dlib-style ResNet-34 variant, 150x150 RGB in, 128-d out)
// -> ONNX. Its architecture lives in face-api's source (src/faceRecognitionNet: convLayer.ts,
// residualLayer.ts, FaceRecognitionNet.ts), not in a graph file; it is rebuilt here from the
// weights manifest, op for op, so the output matches face-api's own forward pass.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from '../io/binary';
import { type Converted, GraphBuilder, type Value, finish, transposeData } from './graph';
import { type Weight, readWeights } from './tfjs-weights';

export const FACEAPI_INPUT_SIZE = 150;

/** The ResNet's layers in forward order: [prefix, kind]; "down" layers halve the resolution. */
const LAYERS: [string, 'residual' | 'down'][] = [
  ['conv32_1', 'residual'], ['conv32_2', 'residual'], ['conv32_3', 'residual'],
  ['conv64_down', 'down'], ['conv64_1', 'residual'], ['conv64_2', 'residual'], ['conv64_3', 'residual'],
  ['conv128_down', 'down'], ['conv128_1', 'residual'], ['conv128_2', 'residual'],
  ['conv256_down', 'down'], ['conv256_1', 'residual'], ['conv256_2', 'residual'], ['conv256_down_out', 'down'],
];

/** Converts `face_recognition_model-weights_manifest.json` (and its .bin shard) to ONNX. */
export function convertFaceapi(manifest: string): Converted {
  let groups: unknown;
  try {
    groups = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  } catch (err) {
    throw new FileFormatError(manifest, `expected a face-api weights manifest (JSON): ${(err as Error).message}`);
  }
  const weights = readWeights(manifest, groups, path.dirname(manifest));
  const weight = (name: string, rank: number): Weight => {
    const w = weights.get(name);
    if (!w) throw new FileFormatError(manifest, `expected a weight "${name}" (face-api face recognition ResNet); is this the face_recognition_model manifest?`);
    if (w.shape.length !== rank) throw new FileFormatError(manifest, `weight "${name}": expected rank ${rank}, received shape [${w.shape}]`);
    return w;
  };
  const floats = (w: Weight) => (w.data instanceof Float32Array ? w.data : Float32Array.from(w.data));
  const b = new GraphBuilder(manifest);

  // convLayer.ts: conv + bias, then the "scale" layer (x * weights + biases), then an optional relu.
  const convLayer = (prefix: string, x: Value, stride: number, relu: boolean): Value => {
    const f = weight(`${prefix}/conv/filters`, 4); // HWIO
    const [kh, kw, ci, co] = f.shape;
    const y = b.conv(`${prefix}/conv`, x, transposeData(floats(f), f.shape, [3, 2, 0, 1]), [co, ci, kh, kw], floats(weight(`${prefix}/conv/bias`, 1)), {
      strides: [stride, stride], padding: stride === 1 ? 'SAME' : 'VALID',
    });
    const scale = (name: string) => {
      const w = weight(`${prefix}/scale/${name}`, 1);
      return b.constant(`${prefix}/scale/${name}`, w.shape, floats(w));
    };
    const scaled = b.binary(`${prefix}/scale/add`, 'Add', b.binary(`${prefix}/scale/mul`, 'Mul', y, scale('weights')), scale('biases'));
    return relu ? b.unary(`${prefix}/relu`, 'Relu', scaled) : scaled;
  };

  // residualLayer.ts
  const residual = (prefix: string, x: Value): Value => {
    const out = convLayer(`${prefix}/conv2`, convLayer(`${prefix}/conv1`, x, 1, true), 1, false);
    return b.unary(`${prefix}/relu`, 'Relu', b.binary(`${prefix}/add`, 'Add', out, x));
  };
  const residualDown = (prefix: string, x: Value): Value => {
    let out = convLayer(`${prefix}/conv2`, convLayer(`${prefix}/conv1`, x, 2, true), 1, false);
    let pooled = b.pool(`${prefix}/avgpool`, 'avg', x, { kernel: [2, 2], strides: [2, 2], padding: 'VALID' });
    // face-api concatenates zeros: one row and one column at the end of `out` when the sizes
    // differ, and as many channels as `pooled` has at its end when the channel counts differ.
    if (pooled.shape[1] !== out.shape[1] || pooled.shape[2] !== out.shape[2]) out = b.pad(`${prefix}/pad_spatial`, out, [[0, 0], [0, 1], [0, 1], [0, 0]]);
    if (pooled.shape[3] !== out.shape[3]) pooled = b.pad(`${prefix}/pad_channels`, pooled, [[0, 0], [0, 0], [0, 0], [0, pooled.shape[3]]]);
    if (out.shape.some((d, i) => d !== pooled.shape[i])) {
      throw new FileFormatError(manifest, `layer ${prefix}: shortcut [${pooled.shape}] does not match the residual branch [${out.shape}]`);
    }
    return b.unary(`${prefix}/relu`, 'Relu', b.binary(`${prefix}/add`, 'Add', pooled, out));
  };

  // FaceRecognitionNet.ts forwardInput (the mean subtraction and /255 are the card's preprocessing).
  const input = b.input('input', [-1, FACEAPI_INPUT_SIZE, FACEAPI_INPUT_SIZE, 3]);
  let out = convLayer('conv32_down', input, 2, true);
  out = b.pool('maxpool', 'max', out, { kernel: [3, 3], strides: [2, 2], padding: 'VALID' });
  for (const [prefix, kind] of LAYERS) out = kind === 'down' ? residualDown(prefix, out) : residual(prefix, out);
  const pooled = b.reduce('global_avg', 'ReduceMean', out, [1, 2], false);
  const fc = weight('fc', 2); // [in, out]
  const embedding = b.dense('fc', pooled, transposeData(floats(fc), fc.shape, [1, 0]), [fc.shape[1], fc.shape[0]], null);
  return finish(b, 'face_recognition_model', { name: input.forms.nchw!, shape: [-1, FACEAPI_INPUT_SIZE, FACEAPI_INPUT_SIZE, 3] }, embedding);
}
