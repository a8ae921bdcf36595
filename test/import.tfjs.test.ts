// TensorFlow.js and face-api import, checked against TensorFlow.js itself (wasm backend): a graph
// the test writes (every weight encoding, fused ops, dilation, explicit padding, an NHWC flatten),
// the catalogue's face networks on real face crops, and bad models and weight files.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { imageToTensor } from '../src/images';
import { FileFormatError } from '../src/io/binary';
import { ImportError, UnsupportedOpError, convertFaceapi, convertTfjs, importModel, locate, catalogueEntry } from '../src/importers';
import { checkCardAgainstModel, loadCard } from '../src/models';
import { GraphIndex } from '../src/onnx/graph';
import { readModel } from '../src/onnx/proto';
import * as ort from 'onnxruntime-node';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('import.tfjs.test');

before(async () => {
  // The wasm binaries ship inside the npm package: no network needed.
  setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
  if (!(await tf.setBackend('wasm'))) {
    console.log('# @tensorflow/tfjs-backend-wasm did not initialise: the reference runs on the tfjs cpu backend');
    await tf.setBackend('cpu');
  }
  await tf.ready();
  console.log(`# TensorFlow.js ${tf.version.tfjs}, backend ${tf.getBackend()}`);
});

interface Manifest {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  format?: string;
  signature?: object;
}

/** Loads a graph model from files through TensorFlow.js's own weight decoding. */
async function loadReference(modelJson: string): Promise<tf.GraphModel> {
  const handler: tf.io.IOHandler = {
    load: async () => {
      const j = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as Manifest;
      const data = Buffer.concat(j.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), p)))));
      return {
        modelTopology: j.modelTopology as object, format: j.format, signature: j.signature,
        weightSpecs: j.weightsManifest.flatMap((g) => g.weights),
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
  return tf.loadGraphModel(handler);
}

/** Runs an imported model on NCHW input and returns the named outputs. */
async function runOnnx(onnxPath: string, inputName: string, x: Float32Array, dims: number[]) {
  const session = await ort.InferenceSession.create(onnxPath);
  return session.run({ [inputName]: new ort.Tensor('float32', x, dims) });
}

function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out[((b * c + k) * h * w) + p] = x[(b * h * w + p) * c + k];
  return out;
}

function maxRelErr(a: Float32Array, b: Float32Array, rows: number): number {
  const d = a.length / rows;
  let worst = 0;
  for (let i = 0; i < rows; i++) worst = Math.max(worst, relErr(a.subarray(i * d, (i + 1) * d), b.subarray(i * d, (i + 1) * d)));
  return worst;
}

// ---- a graph model written by the test ----

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
const NHWC = { s: b64('NHWC') };

interface WeightOut { spec: tf.io.WeightsManifestEntry; bytes: Uint8Array }

/** Random weights in one of the three encodings; returns the manifest entry and the stored bytes. */
function weight(name: string, shape: number[], encoding: 'float32' | 'float16' | 'uint8' | 'int32', values?: number[]): WeightOut {
  const n = shape.reduce((a, b) => a * b, 1);
  if (encoding === 'int32') return { spec: { name, shape, dtype: 'int32' }, bytes: new Uint8Array(Int32Array.from(values!).buffer) };
  if (encoding === 'float32') return { spec: { name, shape, dtype: 'float32' }, bytes: new Uint8Array(Float32Array.from(values ?? Array.from({ length: n }, () => rng() - 0.5)).buffer) };
  if (encoding === 'uint8') {
    return { spec: { name, shape, dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.004, min: -0.5 } }, bytes: Uint8Array.from({ length: n }, () => Math.floor(rng() * 256)) };
  }
  // float16 bit patterns of magnitudes 2^-4 .. 2^0, either sign.
  const halfs = Uint16Array.from({ length: n }, () => (rng() < 0.5 ? 0x8000 : 0) | ((11 + Math.floor(rng() * 4)) << 10) | Math.floor(rng() * 1024));
  return { spec: { name, shape, dtype: 'float32', quantization: { dtype: 'float16' } }, bytes: new Uint8Array(halfs.buffer) };
}

const IN = [11, 9, 3];

/** Writes model.json + two shards; `edit` may change nodes or weights before writing. */
function writeGraphModel(dir: string, edit: (nodes: Record<string, unknown>[], weights: WeightOut[]) => void = () => {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const weights = [
    weight('c0/w', [3, 3, 3, 4], 'float32'),
    weight('pad/p', [4, 2], 'int32', [0, 0, 1, 2, 0, 1, 0, 0]),
    weight('c1/w', [3, 3, 4, 6], 'uint8'), weight('c1/b', [6], 'float32'),
    weight('dw/w', [3, 3, 6, 2], 'float16'), weight('dw/b', [12], 'float16'),
    weight('scale', [12], 'float32'), weight('shift', [12], 'uint8'), weight('one', [], 'float32', [1]),
    weight('flat/shape', [2], 'int32', [-1, 24]),
    weight('fc1/w', [24, 16], 'uint8'), weight('fc1/b', [16], 'float32'),
    weight('fc2/w', [5, 16], 'float16'),
  ];
  const c = (name: string) => ({ name, op: 'Const', attr: { dtype: { type: name.endsWith('/p') || name.endsWith('shape') ? 'DT_INT32' : 'DT_FLOAT' } } });
  const nodes: Record<string, unknown>[] = [
    { name: 'input', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [-1, ...IN].map((size) => ({ size: String(size) })) } } } },
    ...weights.map((w) => c(w.spec.name)),
    { name: 'c0', op: 'Conv2D', input: ['input', 'c0/w'], attr: { strides: ints(1, 2, 2, 1), padding: { s: b64('SAME') }, data_format: NHWC, dilations: ints(1, 1, 1, 1) } },
    { name: 'pad', op: 'Pad', input: ['c0', 'pad/p'] },
    {
      name: 'c1', op: '_FusedConv2D', input: ['pad', 'c1/w', 'c1/b'],
      attr: { strides: ints(1, 1, 1, 1), padding: { s: b64('VALID') }, data_format: NHWC, dilations: ints(1, 2, 2, 1), fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu6')] } }, num_args: { i: '1' } },
    },
    {
      name: 'dw', op: 'FusedDepthwiseConv2dNative', input: ['c1', 'dw/w', 'dw/b'],
      attr: { strides: ints(1, 2, 2, 1), padding: { s: b64('SAME') }, data_format: NHWC, dilations: ints(1, 1, 1, 1), fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } }, num_args: { i: '1' } },
    },
    { name: 'mul', op: 'Mul', input: ['dw', 'scale'] },
    { name: 'add', op: 'AddV2', input: ['mul', 'shift'] },
    { name: 'sq', op: 'Square', input: ['add'] },
    { name: 'sq1', op: 'AddV2', input: ['sq', 'one'] },
    { name: 'rs', op: 'Rsqrt', input: ['sq1'] },
    { name: 'norm', op: 'Mul', input: ['add', 'rs'] },
    { name: 'pool', op: 'AvgPool', input: ['norm'], attr: { ksize: ints(1, 2, 2, 1), strides: ints(1, 2, 2, 1), padding: { s: b64('SAME') }, data_format: NHWC } },
    { name: 'flat', op: 'Reshape', input: ['pool', 'flat/shape'] },
    { name: 'fc1', op: '_FusedMatMul', input: ['flat', 'fc1/w', 'fc1/b'], attr: { transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } }, num_args: { i: '1' } } },
    { name: 'fc2', op: 'MatMul', input: ['fc1', 'fc2/w'], attr: { transpose_a: { b: false }, transpose_b: { b: true } } },
    { name: 'prob', op: 'Softmax', input: ['fc2'] },
  ];
  edit(nodes, weights);
  const data = Buffer.concat(weights.map((w) => w.bytes));
  const cut = Math.floor(data.length / 3);
  fs.writeFileSync(path.join(dir, 'w1.bin'), data.subarray(0, cut));
  fs.writeFileSync(path.join(dir, 'w2.bin'), data.subarray(cut));
  const file = path.join(dir, 'model.json');
  const json: Manifest = { format: 'graph-model', modelTopology: { node: nodes, library: {}, versions: {} }, weightsManifest: [{ paths: ['w1.bin', 'w2.bin'], weights: weights.map((w) => w.spec) }] };
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

describe('TF.js graph model written by the test vs TensorFlow.js', () => {
  const dir = tempDir();

  test('embedding and logits match tfjs (float32, float16 and uint8 weights, two shards)', async () => {
    const file = writeGraphModel(path.join(dir, 'ok'));
    const r = importModel({ source: file, kind: 'tfjs', out: path.join(dir, 'out'), id: 'synthetic', embedding: 'fc1', logits: 'fc2' });
    assert.deepEqual(r.card.embedding, { tensor: 'embedding', dim: 16 });
    assert.deepEqual(r.card.logits?.classes, 5);
    assert.ok(r.card.logits?.head, 'fc2 is a dense layer on fc1: its weights are the head');
    checkCardAgainstModel(loadCard(r.cardPath).card, new GraphIndex(readModel(r.onnxPath).graph, r.onnxPath));

    const N = 3;
    const x = tf.randomUniform([N, ...IN], -2, 2, 'float32', Math.floor(rng() * 1e9));
    const reference = await loadReference(file);
    const [e, l] = reference.execute(x, ['fc1', 'fc2']) as tf.Tensor[];
    const out = await runOnnx(r.onnxPath, r.card.input.name, nhwcToNchw(await x.data() as Float32Array, N, IN[0], IN[1], IN[2]), [N, IN[2], IN[0], IN[1]]);
    const errE = maxRelErr(out.embedding.data as Float32Array, await e.data() as Float32Array, N);
    const errL = maxRelErr(out.logits.data as Float32Array, await l.data() as Float32Array, N);
    console.log(`# synthetic graph: max relative error embedding ${errE.toExponential(2)}, logits ${errL.toExponential(2)}`);
    assert.ok(errE <= 1e-5 && errL <= 1e-5, `relative errors ${errE}, ${errL}`);
  });

  test('an unknown op among the needed nodes is an error naming the op and the node; nothing is written', () => {
    const file = writeGraphModel(path.join(dir, 'unknown'), (nodes) => {
      (nodes.find((n) => n.name === 'sq') as { op: string }).op = 'FancyNewOp';
    });
    const out = path.join(dir, 'unknown-out');
    assert.throws(() => importModel({ source: file, kind: 'tfjs', out, embedding: 'fc1' }), (err: unknown) => {
      assert.ok(err instanceof UnsupportedOpError, String(err));
      assert.equal(err.op, 'FancyNewOp');
      assert.equal(err.nodeName, 'sq');
      assert.match(err.message, /node "sq" uses op FancyNewOp/);
      return true;
    });
    assert.equal(fs.existsSync(out), false);
    // A node the embedding does not depend on is never converted, whatever its op.
    const dangling = writeGraphModel(path.join(dir, 'dangling'), (nodes) => nodes.push({ name: 'extra', op: 'FancyNewOp', input: ['prob'] }));
    assert.equal(convertTfjs(dangling, { embedding: 'fc1' }).embedding.dim, 16);
  });

  test('truncated, missing or mismatched weights are errors naming the file', () => {
    const file = writeGraphModel(path.join(dir, 'trunc'));
    const shard = path.join(dir, 'trunc', 'w2.bin');
    fs.truncateSync(shard, fs.statSync(shard).size - 7);
    assert.throws(() => convertTfjs(file, { embedding: 'fc1' }), (err: unknown) => err instanceof FileFormatError && err.path === file && /need \d+ bytes, the shard files hold \d+.*w2\.bin.*truncated/.test(err.message));

    const missing = writeGraphModel(path.join(dir, 'missing'));
    fs.unlinkSync(path.join(dir, 'missing', 'w1.bin'));
    assert.throws(() => convertTfjs(missing, { embedding: 'fc1' }), (err: unknown) => err instanceof FileFormatError && /cannot read shard .*w1\.bin/.test(err.message));

    const reshaped = writeGraphModel(path.join(dir, 'reshaped'), (_, weights) => {
      weights[0].spec.shape = [3, 3, 3, 5]; // the manifest no longer matches the data
    });
    assert.throws(() => convertTfjs(reshaped, { embedding: 'fc1' }), (err: unknown) => err instanceof FileFormatError && /need \d+ bytes/.test(err.message));

    const renamed = writeGraphModel(path.join(dir, 'renamed'), (_, weights) => {
      weights[0].spec.name = 'c0/weights';
    });
    assert.throws(() => convertTfjs(renamed, { embedding: 'fc1' }), (err: unknown) => err instanceof ImportError && /node "c0\/w" \(Const\): has no values in the weights manifest/.test(err.message));

    const badJson = path.join(dir, 'bad.json');
    fs.writeFileSync(badJson, '{"modelTopology": ');
    assert.throws(() => convertTfjs(badJson), (err: unknown) => err instanceof FileFormatError && err.path === badJson);
    const layers = path.join(dir, 'layers.json');
    fs.writeFileSync(layers, JSON.stringify({ format: 'layers-model', modelTopology: { model_config: {} }, weightsManifest: [] }));
    assert.throws(() => convertTfjs(layers), /layers model/);
  });

  test('a node name that is not in the graph is an error', () => {
    const file = writeGraphModel(path.join(dir, 'names'));
    assert.throws(() => convertTfjs(file, { embedding: 'no/such/node' }), (err: unknown) => err instanceof ImportError && /"no\/such\/node"/.test(err.message));
  });
});

// ---- the catalogue's face networks on real faces ----

const FIXTURES = path.resolve(__dirname, '../../test/fixtures/images');
const LFW = path.resolve(__dirname, '../../../shared/data/lfw/images');

/** Face crops: the repository's fixtures (an LFW photo, ORL faces), plus LFW photos of other people when ../shared is there. */
function faces(): string[] {
  const files = [path.join(FIXTURES, 'photos/lfw-Aaron_Eckhart_0001.jpg'), ...['s1/1', 's1/2', 's2/1', 's2/2'].map((f) => path.join(FIXTURES, `orl/${f}.pgm`))];
  if (fs.existsSync(LFW)) {
    for (const name of ['Abdullah_Gul', 'Serena_Williams', 'Vladimir_Putin', 'Gloria_Macapagal_Arroyo']) {
      const f = path.join(LFW, name, `${name}_0001.jpg`);
      if (fs.existsSync(f)) files.push(f);
    }
  } else console.log(`# ${LFW} not found: the face networks are checked on the ${files.length} fixture faces only`);
  return files;
}

interface FaceApi {
  nets: { faceRecognitionNet: { loadFromDisk(dir: string): Promise<void>; forward(input: tf.Tensor3D[]): Promise<tf.Tensor2D> } };
}

describe('catalogue face networks on real face crops vs TensorFlow.js', () => {
  const dir = tempDir();
  const files = faces();

  for (const id of ['faceres', 'faceres-deep', 'mobileface', 'faceapi-resnet']) {
    test(`${id}: relative error <= 1e-4 on ${files.length} faces`, async () => {
      const r = importModel({ source: id, out: dir });
      const { card } = loadCard(r.cardPath);
      checkCardAgainstModel(card, new GraphIndex(readModel(r.onnxPath).graph, r.onnxPath));
      const [h, w] = card.input.size, N = files.length, per = 3 * h * w;
      // The card's preprocessing for ONNX; for the reference, the same resize in TF's NHWC layout.
      const x = new Float32Array(N * per), ref = new Float32Array(N * per);
      const refSpec = id === 'faceapi-resnet'
        ? { ...card.input, layout: 'NHWC' as const, scale: 1, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] } // face-api normalises itself
        : { ...card.input, layout: 'NHWC' as const };
      for (const [i, f] of files.entries()) {
        x.set(await imageToTensor(f, card.input), i * per);
        ref.set(await imageToTensor(f, refSpec), i * per);
      }
      const out = await runOnnx(r.onnxPath, card.input.name, x, [N, 3, h, w]);
      const batch = tf.tensor4d(ref, [N, h, w, 3]);
      let expected: tf.Tensor;
      if (id === 'faceapi-resnet') {
        const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
        await faceapi.nets.faceRecognitionNet.loadFromDisk(path.dirname(locate(catalogueEntry(id)!).file));
        expected = await faceapi.nets.faceRecognitionNet.forward(tf.unstack(batch) as tf.Tensor3D[]);
      } else {
        expected = (await loadReference(locate(catalogueEntry(id)!).file)).execute(batch, catalogueEntry(id)!.embedding!) as tf.Tensor;
      }
      const e = out.embedding.data as Float32Array, t = await expected.data() as Float32Array;
      assert.equal(e.length, N * card.embedding.dim);
      const err = maxRelErr(e, t, N);
      // Real faces give distinct embeddings (a degenerate network gives the same vector for all).
      let spread = 0;
      for (let i = 1; i < N; i++) spread = Math.max(spread, relErr(t.subarray(i * card.embedding.dim, (i + 1) * card.embedding.dim), t.subarray(0, card.embedding.dim)));
      console.log(`# ${id}: max relative error ${err.toExponential(2)} over ${N} faces (backend ${tf.getBackend()}); largest difference between faces ${spread.toFixed(3)}`);
      assert.ok(err <= 1e-4, `${id}: relative error ${err}`);
      assert.ok(spread > 0.05, `${id}: embeddings of different faces barely differ (${spread})`);
    });
  }

  test('faceapi: a manifest of another face-api network is a clear error', () => {
    const other = path.join(path.dirname(locate(catalogueEntry('faceapi-resnet')!).file), 'age_gender_model-weights_manifest.json');
    assert.throws(() => convertFaceapi(other), (err: unknown) => err instanceof FileFormatError && /expected a weight "conv32_down\/conv\/filters"/.test(err.message));
  });
});
