// TFLite import: a quantised model the test writes with the flatbuffers Builder (uint8 per-tensor
// and int8 per-channel weights, odd sizes and strides so SAME padding is asymmetric) against a
// float64 forward pass written here; bad files; and, when ../shared is there, the Coral MobileNets
// on real ImageNet photos and their classifier heads.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Builder } from 'flatbuffers';
import { WeightsEstimator } from '../src/estimators/weights';
import { imageToTensor } from '../src/images';
import { CATALOGUE, ImportError, UnsupportedOpError, convertTflite, importModel, locate } from '../src/importers';
import { FileFormatError } from '../src/io/binary';
import { readSafetensors } from '../src/io/safetensors';
import { Matrix } from '../src/core/matrix';
import { checkCardAgainstModel, loadCard } from '../src/models';
import { GraphIndex } from '../src/onnx/graph';
import { readHead } from '../src/onnx/head';
import { readModel } from '../src/onnx/proto';
import * as ort from 'onnxruntime-node';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('import.tflite.test');

// ---- a minimal TFLite writer (schema.fbs field slots) ----

interface TensorSpec {
  name: string;
  shape: number[];
  type: 'float32' | 'int32' | 'uint8' | 'int8';
  data?: Uint8Array;
  quant?: { scale: number[]; zeroPoint: number[]; dim?: number };
}
interface OpSpec {
  code: number;
  inputs: number[];
  outputs: number[];
  /** Writes the options table (after nested vectors) and returns its offset. */
  options?: (b: Builder) => number;
}
const TYPE_CODE = { float32: 0, int32: 2, uint8: 3, int8: 9 };
const OP = { ADD: 0, AVERAGE_POOL_2D: 1, CONV_2D: 3, DEPTHWISE_CONV_2D: 4, RESHAPE: 22, SOFTMAX: 25, MEAN: 40, HARD_SWISH: 117 };

function vector(b: Builder, size: number, values: readonly number[], add: (v: number) => void): number {
  b.startVector(size, values.length, size);
  for (let i = values.length - 1; i >= 0; i--) add(values[i]);
  return b.endVector();
}

function table(b: Builder, fields: [number, 'offset' | 'int32' | 'int8' | 'float32', number][]): number {
  b.startObject(Math.max(...fields.map((f) => f[0])) + 1);
  for (const [slot, kind, v] of fields) {
    if (kind === 'offset') b.addFieldOffset(slot, v, 0);
    else if (kind === 'int32') b.addFieldInt32(slot, v, -999);
    else if (kind === 'int8') b.addFieldInt8(slot, v, -99);
    else b.addFieldFloat32(slot, v, -999);
  }
  return b.endObject();
}

function writeTflite(tensors: TensorSpec[], ops: OpSpec[], inputs: number[], outputs: number[]): Uint8Array {
  const b = new Builder(1 << 16);
  const buffers: Uint8Array[] = [new Uint8Array(0)];
  const tensorOffsets = tensors.map((t) => {
    let buffer = 0;
    if (t.data) buffer = buffers.push(t.data) - 1;
    const name = b.createString(t.name);
    const shape = vector(b, 4, t.shape, (v) => b.addInt32(v));
    let quant = 0;
    if (t.quant) {
      const scale = vector(b, 4, t.quant.scale, (v) => b.addFloat32(v));
      const zp = vector(b, 8, t.quant.zeroPoint, (v) => b.addInt64(BigInt(v)));
      quant = table(b, [[2, 'offset', scale], [3, 'offset', zp], [6, 'int32', t.quant.dim ?? 0]]);
    }
    const fields: [number, 'offset' | 'int32' | 'int8', number][] = [[0, 'offset', shape], [1, 'int8', TYPE_CODE[t.type]], [2, 'int32', buffer], [3, 'offset', name]];
    if (quant) fields.push([4, 'offset', quant]);
    return table(b, fields);
  });
  const codes = [...new Set(ops.map((o) => o.code))];
  const opOffsets = ops.map((o) => {
    const ins = vector(b, 4, o.inputs, (v) => b.addInt32(v));
    const outs = vector(b, 4, o.outputs, (v) => b.addInt32(v));
    const options = o.options?.(b);
    const fields: [number, 'offset' | 'int32' | 'int8', number][] = [[0, 'int32', codes.indexOf(o.code)], [1, 'offset', ins], [2, 'offset', outs]];
    if (options) fields.push([3, 'int8', 1], [4, 'offset', options]); // the union type is not read by the importer
    return table(b, fields);
  });
  const offsets = (list: number[]) => vector(b, 4, list, (v) => b.addOffset(v));
  const subgraph = table(b, [
    [0, 'offset', offsets(tensorOffsets)], [1, 'offset', vector(b, 4, inputs, (v) => b.addInt32(v))],
    [2, 'offset', vector(b, 4, outputs, (v) => b.addInt32(v))], [3, 'offset', offsets(opOffsets)],
  ]);
  const codeOffsets = codes.map((c) => table(b, [[0, 'int8', Math.min(c, 127)], [2, 'int32', 1], [3, 'int32', c]]));
  const bufferOffsets = buffers.map((d) => (d.length ? table(b, [[0, 'offset', b.createByteVector(d)]]) : (b.startObject(1), b.endObject())));
  const model = table(b, [[0, 'int32', 3], [1, 'offset', offsets(codeOffsets)], [2, 'offset', offsets([subgraph])], [4, 'offset', offsets(bufferOffsets)]]);
  b.finish(model, 'TFL3');
  return b.asUint8Array().slice();
}

// ---- the test model and its float64 reference ----

const bytes = (a: ArrayLike<number>, type: 'int32' | 'uint8' | 'int8' | 'float32') =>
  new Uint8Array(({ int32: Int32Array, uint8: Uint8Array, int8: Int8Array, float32: Float32Array }[type]).from(a).buffer);

interface Synthetic {
  file: Uint8Array;
  /** Dequantised weights, as the reference uses them. */
  w1: Float64Array; b1: Float64Array; w2: Float64Array; b2: Float64Array; addc: Float64Array; w3: Float64Array; b3: Float64Array;
}

const H = 9, W = 7, C = 3, C1 = 4, M = 2, C2 = C1 * M, K = 5;

function synthetic(options: { headOp?: number } = {}): Synthetic {
  const ri = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  // conv1: uint8 per-tensor, OHWI [C1, 3, 3, C]
  const s1 = 0.02, z1 = 131, q1 = Array.from({ length: C1 * 9 * C }, () => ri(0, 255));
  const bs1 = (1 / 128) * s1, qb1 = Array.from({ length: C1 }, () => ri(-3000, 3000));
  // depthwise: int8 per-channel along axis 3, [1, 3, 3, C2]
  const s2 = Array.from({ length: C2 }, () => 0.005 + 0.02 * rng()), q2 = Array.from({ length: 9 * C2 }, () => ri(-127, 127));
  const sa = 0.03; // conv1's output scale
  const qb2 = Array.from({ length: C2 }, () => ri(-500, 500));
  const addc = Float64Array.from({ length: C2 }, () => Math.fround(rng() - 0.5));
  // head: 1x1 conv, uint8 per-tensor [K, 1, 1, C2]
  const s3 = 0.01, z3 = 120, q3 = Array.from({ length: K * C2 }, () => ri(0, 255)), qb3 = Array.from({ length: K }, () => ri(-2000, 2000));
  const sm = 0.05, bs3 = sm * s3;
  const f = (v: number) => Math.fround(v);
  const tensors: TensorSpec[] = [
    { name: 'input', shape: [1, H, W, C], type: 'uint8', quant: { scale: [1 / 128], zeroPoint: [128] } }, // 0
    { name: 'conv1/weights', shape: [C1, 3, 3, C], type: 'uint8', data: bytes(q1, 'uint8'), quant: { scale: [s1], zeroPoint: [z1] } }, // 1
    { name: 'conv1/bias', shape: [C1], type: 'int32', data: bytes(qb1, 'int32'), quant: { scale: [bs1], zeroPoint: [0] } }, // 2
    { name: 'conv1/Relu6;conv1/fold', shape: [1, 5, 4, C1], type: 'uint8', quant: { scale: [sa], zeroPoint: [0] } }, // 3
    { name: 'dw/weights', shape: [1, 3, 3, C2], type: 'int8', data: bytes(q2, 'int8'), quant: { scale: s2, zeroPoint: s2.map(() => 0), dim: 3 } }, // 4
    { name: 'dw/bias', shape: [C2], type: 'int32', data: bytes(qb2, 'int32'), quant: { scale: s2.map((s) => s * sa), zeroPoint: s2.map(() => 0) } }, // 5
    { name: 'dw/out', shape: [1, 5, 4, C2], type: 'uint8', quant: { scale: [0.1], zeroPoint: [128] } }, // 6
    { name: 'add/const', shape: [C2], type: 'float32', data: bytes(addc, 'float32') }, // 7
    { name: 'add/out', shape: [1, 5, 4, C2], type: 'uint8', quant: { scale: [0.1], zeroPoint: [0] } }, // 8
    { name: 'pool/out', shape: [1, 3, 2, C2], type: 'uint8', quant: { scale: [0.1], zeroPoint: [0] } }, // 9
    { name: 'mean/axes', shape: [2], type: 'int32', data: bytes([1, 2], 'int32') }, // 10
    { name: 'mean/out', shape: [1, 1, 1, C2], type: 'uint8', quant: { scale: [sm], zeroPoint: [0] } }, // 11
    { name: 'head/weights', shape: [K, 1, 1, C2], type: 'uint8', data: bytes(q3, 'uint8'), quant: { scale: [s3], zeroPoint: [z3] } }, // 12
    { name: 'head/bias', shape: [K], type: 'int32', data: bytes(qb3, 'int32'), quant: { scale: [bs3], zeroPoint: [0] } }, // 13
    { name: 'head/out', shape: [1, 1, 1, K], type: 'uint8', quant: { scale: [0.2], zeroPoint: [100] } }, // 14
    { name: 'reshape/shape', shape: [2], type: 'int32', data: bytes([1, K], 'int32') }, // 15
    { name: 'logits', shape: [1, K], type: 'uint8', quant: { scale: [0.2], zeroPoint: [100] } }, // 16
    { name: 'probabilities', shape: [1, K], type: 'uint8', quant: { scale: [1 / 256], zeroPoint: [0] } }, // 17
  ];
  const conv = (stride: number, act: number) => (b: Builder) => table(b, [[0, 'int8', 0], [1, 'int32', stride], [2, 'int32', stride], [3, 'int8', act]]);
  const ops: OpSpec[] = [
    { code: OP.CONV_2D, inputs: [0, 1, 2], outputs: [3], options: conv(2, 3) }, // SAME, stride 2, RELU6
    { code: OP.DEPTHWISE_CONV_2D, inputs: [3, 4, 5], outputs: [6], options: (b) => table(b, [[0, 'int8', 0], [1, 'int32', 1], [2, 'int32', 1], [3, 'int32', M], [4, 'int8', 0]]) },
    { code: OP.ADD, inputs: [6, 7], outputs: [8], options: (b) => table(b, [[0, 'int8', 1]]) }, // RELU
    { code: OP.AVERAGE_POOL_2D, inputs: [8], outputs: [9], options: (b) => table(b, [[0, 'int8', 0], [1, 'int32', 2], [2, 'int32', 2], [3, 'int32', 2], [4, 'int32', 2], [5, 'int8', 0]]) },
    { code: OP.MEAN, inputs: [9, 10], outputs: [11], options: (b) => table(b, [[0, 'int8', 1]]) }, // keep_dims
    { code: options.headOp ?? OP.CONV_2D, inputs: [11, 12, 13], outputs: [14], options: conv(1, 0) },
    { code: OP.RESHAPE, inputs: [14, 15], outputs: [16] },
    { code: OP.SOFTMAX, inputs: [16], outputs: [17], options: (b) => table(b, [[0, 'float32', 1]]) },
  ];
  return {
    file: writeTflite(tensors, ops, [0], [17]),
    w1: Float64Array.from(q1, (q) => f((q - z1) * s1)), b1: Float64Array.from(qb1, (q) => f(q * bs1)),
    w2: Float64Array.from(q2, (q, i) => f(q * s2[i % C2])), b2: Float64Array.from(qb2, (q, i) => f(q * s2[i] * sa)),
    addc, w3: Float64Array.from(q3, (q) => f((q - z3) * s3)), b3: Float64Array.from(qb3, (q) => f(q * bs3)),
  };
}

type Map3 = { h: number; w: number; c: number; d: Float64Array }; // NHWC, one image

/** TensorFlow's SAME: out = ceil(n / s), the odd padding pixel after. */
const samePad = (n: number, k: number, s: number) => Math.floor(Math.max((Math.ceil(n / s) - 1) * s + k - n, 0) / 2);

function convRef(x: Map3, w: Float64Array, bias: Float64Array, out: number, k: number, s: number, depthwise: boolean, act: (v: number) => number): Map3 {
  const ho = Math.ceil(x.h / s), wo = Math.ceil(x.w / s), pt = samePad(x.h, k, s), pl = samePad(x.w, k, s);
  const y = new Float64Array(ho * wo * out);
  for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let o = 0; o < out; o++) {
    let sum = bias[o];
    for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
      const yy = i * s - pt + u, xx = j * s - pl + v;
      if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w) continue;
      if (depthwise) sum += x.d[(yy * x.w + xx) * x.c + Math.floor(o / (out / x.c))] * w[(u * k + v) * out + o];
      else for (let c = 0; c < x.c; c++) sum += x.d[(yy * x.w + xx) * x.c + c] * w[((o * k + u) * k + v) * x.c + c];
    }
    y[(i * wo + j) * out + o] = act(sum);
  }
  return { h: ho, w: wo, c: out, d: y };
}

function forwardRef(s: Synthetic, image: Float64Array): { embedding: Float64Array; logits: Float64Array } {
  let x: Map3 = { h: H, w: W, c: C, d: image };
  x = convRef(x, s.w1, s.b1, C1, 3, 2, false, (v) => Math.min(Math.max(v, 0), 6));
  x = convRef(x, s.w2, s.b2, C2, 3, 1, true, (v) => v);
  x = { ...x, d: x.d.map((v, i) => Math.max(v + s.addc[i % C2], 0)) };
  // 2x2 stride-2 SAME average pool: the padded pixels are not counted.
  const ho = Math.ceil(x.h / 2), wo = Math.ceil(x.w / 2), pooled = new Float64Array(ho * wo * C2);
  for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let c = 0; c < C2; c++) {
    let sum = 0, n = 0;
    for (let u = 0; u < 2; u++) for (let v = 0; v < 2; v++) {
      const yy = 2 * i - samePad(x.h, 2, 2) + u, xx = 2 * j - samePad(x.w, 2, 2) + v;
      if (yy >= 0 && yy < x.h && xx >= 0 && xx < x.w) { sum += x.d[(yy * x.w + xx) * C2 + c]; n++; }
    }
    pooled[(i * wo + j) * C2 + c] = sum / n;
  }
  const embedding = new Float64Array(C2);
  for (let p = 0; p < ho * wo; p++) for (let c = 0; c < C2; c++) embedding[c] += pooled[p * C2 + c] / (ho * wo);
  const logits = Float64Array.from({ length: K }, (_, k) => s.b3[k] + embedding.reduce((a, e, c) => a + e * s.w3[k * C2 + c], 0));
  return { embedding, logits };
}

/** NHWC float64 images to the ONNX input (NCHW float32). */
function toNchw(images: Float64Array[], h: number, w: number): Float32Array {
  const out = new Float32Array(images.length * 3 * h * w);
  images.forEach((img, n) => {
    for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) out[((n * 3 + c) * h * w) + p] = img[p * 3 + c];
  });
  return out;
}

describe('TFLite import of a quantised model written by the test', () => {
  const dir = tempDir();
  const s = synthetic();
  const file = path.join(dir, 'synthetic.tflite');
  fs.writeFileSync(file, s.file);

  test('embedding and logits match a float64 forward pass of the dequantised weights', async () => {
    const r = importModel({ source: file, kind: 'tflite', out: dir, id: 'synthetic' });
    assert.deepEqual(r.card.input.size, [H, W]);
    assert.equal(r.card.input.layout, 'NCHW');
    // The quantised input (scale 1/128, zero point 128) becomes the card's normalisation.
    assert.deepEqual([r.card.input.mean, r.card.input.std, r.card.input.scale], [[128, 128, 128], [128, 128, 128], 1]);
    assert.deepEqual(r.card.embedding, { tensor: 'embedding', dim: C2 });
    assert.equal(r.card.logits?.classes, K);
    checkCardAgainstModel(loadCard(r.cardPath).card, new GraphIndex(readModel(r.onnxPath).graph, r.onnxPath));

    const pixels = Array.from({ length: 3 }, () => Uint8Array.from({ length: H * W * C }, () => Math.floor(rng() * 256)));
    const images = pixels.map((p) => Float64Array.from(p, (q) => (q - 128) / 128));
    const session = await ort.InferenceSession.create(r.onnxPath);
    const out = await session.run({ [r.card.input.name]: new ort.Tensor('float32', toNchw(images, H, W), [images.length, 3, H, W]) });
    assert.deepEqual(out.embedding.dims, [images.length, C2]);
    images.forEach((img, n) => {
      const ref = forwardRef(s, img);
      const e = (out.embedding.data as Float32Array).subarray(n * C2, (n + 1) * C2);
      const l = (out.logits.data as Float32Array).subarray(n * K, (n + 1) * K);
      assert.ok(relErr(e, ref.embedding) < 1e-5, `image ${n}: embedding relative error ${relErr(e, ref.embedding)}`);
      assert.ok(relErr(l, ref.logits) < 1e-5, `image ${n}: logits relative error ${relErr(l, ref.logits)}`);
    });
  });

  test('the classifier head is the dequantised 1x1 convolution, in the ONNX file and the head file', () => {
    const r = importModel({ source: file, kind: 'tflite', out: dir, id: 'synthetic' });
    assert.ok(r.card.logits?.head && r.headPath);
    const head = readHead(new GraphIndex(readModel(r.onnxPath).graph, r.onnxPath), r.card.logits.head);
    assert.deepEqual([head.W.rows, head.W.cols], [K, C2]);
    // Dequantised in float32 by the importer and in float64 (then rounded) here: a few ulps apart.
    assert.ok(relErr(head.W.data, s.w3) < 4e-7 && relErr(head.c, s.b3) < 4e-7, `W ${relErr(head.W.data, s.w3)} c ${relErr(head.c, s.b3)}`);
    const f = readSafetensors(r.headPath);
    assert.deepEqual(Array.from(f.tensors.get('weight')!.data), Array.from(head.W.data));
    assert.deepEqual(Array.from(f.tensors.get('bias')!.data), Array.from(head.c));
  });

  test('an unknown op is an error naming the op and the node; nothing is written', () => {
    const out = path.join(dir, 'unknown');
    const bad = path.join(dir, 'hardswish.tflite');
    fs.writeFileSync(bad, synthetic({ headOp: OP.HARD_SWISH }).file);
    assert.throws(() => importModel({ source: bad, kind: 'tflite', out }), (err: unknown) => {
      assert.ok(err instanceof UnsupportedOpError, String(err));
      assert.match(err.message, /HARD_SWISH/);
      assert.match(err.message, /node "head\/out \(operator 5\)"/);
      assert.ok(err.message.startsWith(bad));
      return true;
    });
    assert.equal(fs.existsSync(out), false);
  });

  test('a truncated or foreign file is a FileFormatError naming it', () => {
    for (const cut of [s.file.length - 100, Math.floor(s.file.length / 2), 16]) {
      const bad = path.join(dir, `truncated-${cut}.tflite`);
      fs.writeFileSync(bad, s.file.subarray(0, cut));
      assert.throws(() => convertTflite(bad), (err: unknown) => err instanceof FileFormatError && err.path === bad && /past the end|truncated/.test(err.message), `cut at ${cut}`);
    }
    const foreign = path.join(dir, 'foreign.tflite');
    fs.writeFileSync(foreign, Buffer.from('{"not": "a flatbuffer"}'));
    assert.throws(() => convertTflite(foreign), (err: unknown) => err instanceof FileFormatError && /TFL3/.test(err.message));
  });

  test('a tensor name that is not in the model is an error', () => {
    assert.throws(() => convertTflite(file, { embedding: 'no/such/tensor' }), (err: unknown) => err instanceof ImportError && /no\/such\/tensor/.test(err.message));
  });
});

// ---- the Coral MobileNets (../shared) ----

const coral = CATALOGUE.filter((e) => e.kind === 'tflite');
const coralSkip = (() => {
  try {
    coral.forEach((e) => locate(e));
    return undefined;
  } catch (err) {
    return `Coral models not available: ${(err as Error).message}`;
  }
})();
const SAMPLE = path.resolve(__dirname, '../../../shared/data/imagenet-sample');
const FIXTURE_GOLDFISH = path.resolve(__dirname, '../../test/fixtures/images/photos/imagenet-n01443537.jpg');

describe('Coral MobileNets (../shared)', () => {
  const dir = tempDir();
  const imported = new Map<string, ReturnType<typeof importModel>>();
  const get = (id: string) => {
    if (!imported.has(id)) imported.set(id, importModel({ source: id, out: dir }));
    return imported.get(id)!;
  };

  test('each classifier names the right class of real ImageNet photos', async (t) => {
    if (coralSkip) return t.skip(coralSkip);
    // One photo per class; a broken import gets (nearly) all of them wrong.
    const labels = fs.existsSync(path.join(SAMPLE, 'labels.tsv'))
      ? fs.readFileSync(path.join(SAMPLE, 'labels.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t')).filter((_, i) => i % 100 === 1).map(([f, , k]) => ({ file: path.join(SAMPLE, 'images', f), label: Number(k) }))
      : [{ file: FIXTURE_GOLDFISH, label: 1 }];
    for (const entry of coral.filter((e) => e.publishedTop1 !== undefined)) {
      const r = get(entry.id);
      const { card } = loadCard(r.cardPath);
      assert.equal(card.logits?.labelOffset, -1);
      const session = await ort.InferenceSession.create(r.onnxPath);
      let correct = 0;
      for (const { file, label } of labels) {
        const x = await imageToTensor(file, card.input);
        const out = await session.run({ [card.input.name]: new ort.Tensor('float32', x, [1, 3, ...card.input.size]) });
        const l = out.logits.data as Float32Array;
        const best = l.indexOf(Math.max(...l));
        if (best + card.logits!.labelOffset! === label) correct++;
      }
      console.log(`# ${entry.id}: ${correct}/${labels.length} correct`);
      assert.ok(correct >= Math.ceil(labels.length * 0.3), `${entry.id}: only ${correct} of ${labels.length} photos classified correctly`);
    }
  });

  test('heads are exposed: logits = W e + c, and the weights estimator maps between the five', async (t) => {
    if (coralSkip) return t.skip(coralSkip);
    const classifiers = coral.filter((e) => e.publishedTop1 !== undefined);
    assert.equal(classifiers.length, 5);
    const heads: { id: string; W: Matrix; c: Float32Array | Float64Array }[] = [];
    for (const entry of classifiers) {
      const r = get(entry.id);
      const f = readSafetensors(r.headPath!);
      const w = f.tensors.get('weight')!, c = f.tensors.get('bias')!;
      assert.deepEqual(w.shape, [1001, r.card.embedding.dim]);
      heads.push({ id: entry.id, W: new Matrix(w.data, w.shape[0], w.shape[1]), c: c.data });
      // The head reproduces the graph's logits from its embedding on a random input.
      const [h, wd] = r.card.input.size;
      const session = await ort.InferenceSession.create(r.onnxPath);
      const x = Float32Array.from({ length: 3 * h * wd }, () => rng() * 2 - 1);
      const out = await session.run({ [r.card.input.name]: new ort.Tensor('float32', x, [1, 3, h, wd]) });
      const e = out.embedding.data as Float32Array;
      const logits = Float64Array.from({ length: 1001 }, (_, k) => c.data[k] + e.reduce((a, v, j) => a + v * w.data[k * e.length + j], 0));
      assert.ok(relErr(out.logits.data as Float32Array, logits) < 1e-5, `${entry.id}: logits differ from W e + c`);
    }
    // A cycle through the five (each is once a source and once a target) keeps the test short.
    for (let i = 0; i < heads.length; i++) {
      const a = heads[i], b = heads[(i + 1) % heads.length];
      const est = await new WeightsEstimator().fitHeads(a, b);
      const map = est.toMap({ source: { model: a.id, dim: a.W.cols }, target: { model: b.id, dim: b.W.cols } });
      assert.deepEqual([map.p, map.q], [a.W.cols, b.W.cols]);
      assert.ok(map.apply(Float32Array.from({ length: a.W.cols }, () => rng())).every(Number.isFinite), `${a.id} -> ${b.id}: non-finite map`);
    }
  });

  test('the embedding extractor has no head and a 1024-d embedding', async (t) => {
    if (coralSkip) return t.skip(coralSkip);
    const r = get('mobilenet-v1-1.0-224-embedding');
    assert.deepEqual(r.card.embedding, { tensor: 'embedding', dim: 1024 });
    assert.equal(r.card.logits, undefined);
    assert.equal(r.headPath, undefined);
    checkCardAgainstModel(r.card, new GraphIndex(readModel(r.onnxPath).graph, r.onnxPath));
  });
});
