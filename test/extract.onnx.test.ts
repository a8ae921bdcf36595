// ONNX graph utilities against known answers: a CNN the project writes (seeded weights) run by ONNX
// Runtime vs a float64 forward pass in plain JS, intermediate tensors exposed by graph surgery,
// weights decoded from every storage (float16, bfloat16, int8 + DequantizeLinear), and classifier
// heads found and read for each head form.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { WeightsEstimator } from '../src/estimators/weights';
import { makeRng as seeded } from '../src/evaluate/split';
import { type ConvNet, type LayerSpec, convNet } from './helpers/cnn';
import { GraphIndex, UnknownTensorError, withOutputs } from '../src/onnx/graph';
import { findHead, logitsBeforeSoftmax, readHead } from '../src/onnx/head';
import { onnx } from 'onnx-proto';
import { encodeModel, floatTensor, model, node, valueInfo } from '../src/onnx/proto';
import * as ort from 'onnxruntime-node';
import { openSession } from '../src/onnx/runtime';
import { halfToFloat, tensorToFloat32 } from '../src/onnx/tensor';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('extract.onnx.test');
const DT = onnx.TensorProto.DataType;

type T3 = { c: number; h: number; w: number; data: Float64Array };

/** Float64 forward pass of convNet's layers, written independently of ONNX (NCHW, one image). */
function reference(net: ConvNet, layers: LayerSpec[], image: T3, classes?: number, headOp = 'gemm') {
  let counter = 0;
  const W = (name: string) => net.weights.get(name)!;
  const apply = (layer: LayerSpec, x: T3): T3 => {
    if (layer.op === 'conv') {
      const id = `conv${counter++}`;
      const { out, kernel: k, stride = 1, pad = Math.floor(k / 2), groups = 1, relu = true } = layer;
      const w = W(`${id}.weight`).data, b = W(`${id}.bias`).data;
      const ho = Math.floor((x.h + 2 * pad - k) / stride) + 1, wo = Math.floor((x.w + 2 * pad - k) / stride) + 1;
      const cin = x.c / groups, y = new Float64Array(out * ho * wo);
      for (let o = 0; o < out; o++) {
        const g = Math.floor(o / (out / groups));
        for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
          let s = b[o];
          for (let ci = 0; ci < cin; ci++) for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
            const yy = i * stride - pad + u, xx = j * stride - pad + v;
            if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w) continue;
            s += w[((o * cin + ci) * k + u) * k + v] * x.data[((g * cin + ci) * x.h + yy) * x.w + xx];
          }
          y[(o * ho + i) * wo + j] = relu ? Math.max(0, s) : s;
        }
      }
      return { c: out, h: ho, w: wo, data: y };
    }
    if (layer.op === 'residual') {
      let y = x;
      for (const l of layer.layers) y = apply(l, y);
      counter++; // the 'res' id
      return { ...x, data: x.data.map((v, i) => Math.max(0, v + y.data[i])) };
    }
    if (layer.op === 'maxpool') {
      counter++;
      const { kernel: k, stride, pad = 0 } = layer;
      const ho = Math.floor((x.h + 2 * pad - k) / stride) + 1, wo = Math.floor((x.w + 2 * pad - k) / stride) + 1;
      const y = new Float64Array(x.c * ho * wo).fill(-Infinity);
      for (let c = 0; c < x.c; c++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++)
        for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
          const yy = i * stride - pad + u, xx = j * stride - pad + v;
          if (yy >= 0 && yy < x.h && xx >= 0 && xx < x.w) y[(c * ho + i) * wo + j] = Math.max(y[(c * ho + i) * wo + j], x.data[(c * x.h + yy) * x.w + xx]);
        }
      return { c: x.c, h: ho, w: wo, data: y };
    }
    const y = new Float64Array(x.c);
    for (let c = 0; c < x.c; c++) for (let p = 0; p < x.h * x.w; p++) y[c] += x.data[c * x.h * x.w + p] / (x.h * x.w);
    return { c: x.c, h: 1, w: 1, data: y };
  };
  let x = image;
  for (const l of layers) x = apply(l, x);
  const embedding = x.data;
  if (!classes) return { embedding };
  const w = W('fc.weight').data, b = W('fc.bias').data, dim = embedding.length;
  const logits = new Float64Array(classes);
  for (let k = 0; k < classes; k++) {
    let s = b[k];
    // gemm/conv store classes x dim; matmul stores dim x classes
    for (let d = 0; d < dim; d++) s += (headOp === 'matmul' ? w[d * classes + k] : w[k * dim + d]) * embedding[d];
    logits[k] = s;
  }
  return { embedding, logits };
}

async function runModel(m: onnx.IModelProto, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const { session } = await openSession(encodeModel(m), 'test model');
  try {
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]));
    const out = await session.run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array, dims: [...v.dims] }]));
  } finally {
    await session.release();
  }
}

function randomImages(n: number, c: number, h: number, w: number): Float32Array {
  return Float32Array.from({ length: n * c * h * w }, () => rng() * 2 - 1);
}

const LAYERS: LayerSpec[] = [
  { op: 'conv', out: 6, kernel: 3, stride: 2 },
  { op: 'maxpool', kernel: 2, stride: 2 },
  { op: 'residual', layers: [{ op: 'conv', out: 6, kernel: 3, groups: 2 }, { op: 'conv', out: 6, kernel: 1, relu: false }] },
  { op: 'conv', out: 10, kernel: 3, pad: 0 },
  { op: 'gap' },
];

describe('the CNN writer: known weights, known outputs', () => {
  for (const headOp of ['gemm', 'matmul', 'conv'] as const) {
    test(`ONNX Runtime matches the float64 forward pass (${headOp} head), embedding exposed by graph surgery`, async () => {
      const classes = 7, n = 3, H = 22, Wd = 26;
      const net = convNet({ input: { size: [H, Wd] }, layers: LAYERS, head: { classes, op: headOp }, rng: seeded((rng() * 2 ** 32) >>> 0) });
      const x = randomImages(n, 3, H, Wd);
      const exposed = withOutputs(net.model, [net.embedding]);
      assert.equal(net.model.graph!.output!.length, 1, 'withOutputs must not change its input model');
      const out = await runModel(exposed, { input: { data: x, dims: [n, 3, H, Wd] } });
      assert.deepEqual(out.logits.dims, [n, classes]);
      for (let i = 0; i < n; i++) {
        const ref = reference(net, LAYERS, { c: 3, h: H, w: Wd, data: Float64Array.from(x.subarray(i * 3 * H * Wd, (i + 1) * 3 * H * Wd)) }, classes, headOp);
        assert.ok(relErr(out[net.embedding].data.subarray(i * 10, (i + 1) * 10), ref.embedding) < 1e-5, 'embedding');
        assert.ok(relErr(out.logits.data.subarray(i * classes, (i + 1) * classes), ref.logits!) < 1e-5, 'logits');
      }
    });
  }

  test('NHWC input: a transposed image gives the same outputs as the NCHW net with the same weights', async () => {
    const seed = (rng() * 2 ** 32) >>> 0;
    const spec = { layers: LAYERS, head: { classes: 4 } };
    const nchw = convNet({ input: { size: [18, 18] }, ...spec, rng: seeded(seed) });
    const nhwc = convNet({ input: { size: [18, 18], layout: 'NHWC' }, ...spec, rng: seeded(seed) });
    const x = randomImages(2, 3, 18, 18);
    const t = new Float32Array(x.length);
    for (let i = 0; i < 2; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < 324; p++) t[i * 972 + p * 3 + c] = x[i * 972 + c * 324 + p];
    const a = await runModel(nchw.model, { input: { data: x, dims: [2, 3, 18, 18] } });
    const b = await runModel(nhwc.model, { input: { data: t, dims: [2, 18, 18, 3] } });
    assert.ok(relErr(b.logits.data, a.logits.data) < 1e-6);
  });
});

describe('graph surgery and lookups', () => {
  const net = convNet({ input: { size: [16, 16] }, layers: LAYERS, head: { classes: 3, softmax: true }, rng: seeded(7) });

  test('an unknown tensor name lists the graph\'s tensors', () => {
    assert.throws(() => withOutputs(net.model, ['conv1']), (err: unknown) => {
      assert.ok(err instanceof UnknownTensorError);
      assert.match(err.message, /model: output: expected a tensor of the graph, received 'conv1'; the graph's tensors are 'input', 'conv0', 'conv0.relu'/);
      return true;
    });
    // A large graph: the closest names and the outputs instead of every name.
    const big = convNet({ input: { size: [8, 8] }, layers: Array.from({ length: 12 }, () => ({ op: 'conv' as const, out: 3, kernel: 1 })), rng: seeded(1) });
    assert.throws(() => new GraphIndex(big.model.graph, 'big.onnx').assertTensor('embedding.tensor', 'conv11.rel'), /big\.onnx: embedding.tensor: .*'conv11.rel'; closest names: 'conv11.relu'.*graph outputs: 'conv11.relu'; 25 tensors in all/);
  });

  test('several intermediates exposed at once; outputs already present are not duplicated', async () => {
    const m = withOutputs(net.model, ['conv0.relu', 'prob', 'logits', 'logits']);
    assert.deepEqual(m.graph!.output!.map((o) => o.name), ['prob', 'conv0.relu', 'logits']);
    const out = await runModel(m, { input: { data: randomImages(2, 3, 16, 16), dims: [2, 3, 16, 16] } });
    assert.deepEqual(out['conv0.relu'].dims, [2, 6, 8, 8]);
    // prob = softmax(logits), row by row
    for (let i = 0; i < 2; i++) {
      const l = Array.from(out.logits.data.subarray(i * 3, i * 3 + 3));
      const z = l.reduce((s, v) => s + Math.exp(v), 0);
      assert.ok(relErr(out.prob.data.subarray(i * 3, i * 3 + 3), l.map((v) => Math.exp(v) / z)) < 1e-6);
    }
  });

  test('declared shapes, producers and consumers', () => {
    const g = new GraphIndex(net.model.graph, 'net');
    assert.deepEqual(g.shapeOf('input'), ['N', 3, 16, 16]);
    assert.deepEqual(g.shapeOf('fc.weight'), [3, 10]);
    assert.equal(g.shapeOf('conv0'), undefined);
    assert.equal(g.producer('logits')!.opType, 'Gemm');
    assert.deepEqual(g.consumers('logits').map((n) => n.opType), ['Softmax']);
    assert.equal(logitsBeforeSoftmax(g, 'prob'), 'logits');
    assert.equal(logitsBeforeSoftmax(g, 'logits'), 'logits');
  });
});

describe('weights in every storage', () => {
  test('float16 and bfloat16 (raw and int32_data), float64, int8/uint8/int32 raw', () => {
    // float16 bit patterns with known values
    const halves: [number, number][] = [[0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x0001, 2 ** -24], [0x7bff, 65504], [0x0000, 0]];
    for (const [bits, v] of halves) assert.equal(halfToFloat(bits), v);
    assert.equal(halfToFloat(0x7c00), Infinity);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
    const raw16 = new Uint8Array(halves.length * 2);
    halves.forEach(([b], i) => new DataView(raw16.buffer).setUint16(i * 2, b, true));
    const want = halves.map(([, v]) => v);
    assert.deepEqual(Array.from(tensorToFloat32({ dims: [2, 3], dataType: DT.FLOAT16, rawData: raw16 }, 't')), want);
    assert.deepEqual(Array.from(tensorToFloat32({ dims: [6], dataType: DT.FLOAT16, int32Data: halves.map(([b]) => b) }, 't')), want);
    // bfloat16 is the top half of a float32
    const f = Float32Array.from({ length: 5 }, () => (rng() - 0.5) * 100);
    const u = new Uint32Array(f.buffer);
    const bf = Array.from(u, (x) => x >>> 16);
    const truncated = Float32Array.from(bf, (b) => new Float32Array(Uint32Array.of(b << 16).buffer)[0]);
    assert.deepEqual(tensorToFloat32({ dims: [5], dataType: DT.BFLOAT16, int32Data: bf }, 't'), truncated);
    const d = Float64Array.from({ length: 4 }, () => rng());
    assert.deepEqual(tensorToFloat32({ dims: [4], dataType: DT.DOUBLE, rawData: new Uint8Array(d.buffer) }, 't'), Float32Array.from(d));
    assert.deepEqual(Array.from(tensorToFloat32({ dims: [3], dataType: DT.INT8, rawData: Uint8Array.of(0x80, 0x7f, 0xff) }, 't')), [-128, 127, -1]);
    assert.deepEqual(Array.from(tensorToFloat32({ dims: [3], dataType: DT.UINT8, rawData: Uint8Array.of(0x80, 0x7f, 0xff) }, 't')), [128, 127, 255]);
    assert.deepEqual(Array.from(tensorToFloat32({ dims: [2], dataType: DT.INT32, int32Data: [-5, 7] }, 't')), [-5, 7]);
    // raw_data at an odd offset inside a larger buffer (as protobuf decoding leaves it)
    const fl = Float32Array.from({ length: 3 }, () => rng());
    const shifted = new Uint8Array(13);
    shifted.set(new Uint8Array(fl.buffer), 1);
    assert.deepEqual(tensorToFloat32({ dims: [3], dataType: DT.FLOAT, rawData: shifted.subarray(1) }, 't'), fl);
  });

  test('bad storage is named: wrong byte count, wrong value count, strings, external data', () => {
    assert.throws(() => tensorToFloat32({ dims: [2, 2], dataType: DT.FLOAT, rawData: new Uint8Array(12) }, 'm.onnx: initializer w'), /m\.onnx: initializer w: expected 16 bytes of raw_data for dims \[2,2\] float, found 12/);
    assert.throws(() => tensorToFloat32({ dims: [3], dataType: DT.FLOAT, floatData: [1, 2] }, 'w'), /w: expected 3 values for dims \[3\], found 2/);
    assert.throws(() => tensorToFloat32({ dims: [1], dataType: DT.STRING }, 'w'), /w: expected a float or integer tensor, found data type string/);
    assert.throws(() => tensorToFloat32({ dims: [1], dataType: DT.FLOAT, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL }, 'w'), /external data \(not supported/);
  });

  test('DequantizeLinear: per tensor and per axis, int8 and uint8 with zero points, through a Constant', () => {
    const rows = 4, cols = 5;
    const q = Int8Array.from({ length: rows * cols }, () => Math.floor(rng() * 256) - 128);
    const qu = Uint8Array.from(q, (v) => v + 128);
    const scales = Float32Array.from({ length: rows }, () => 0.01 + rng() * 0.1);
    const zps = Int8Array.from({ length: rows }, () => Math.floor(rng() * 20) - 10);
    const graph: onnx.IGraphProto = {
      node: [
        node('DequantizeLinear', ['q', 's', 'zp'], ['w_axis'], { axis: 0 }),
        node('Constant', [], ['s1'], { value: floatTensor('s1v', [], Float32Array.of(0.5)) }),
        node('DequantizeLinear', ['qu', 's1', 'zpu'], ['w_tensor']),
        node('Identity', ['w_tensor'], ['w_alias']),
      ],
      initializer: [
        { name: 'q', dims: [rows, cols], dataType: DT.INT8, rawData: new Uint8Array(q.buffer) },
        { name: 'qu', dims: [rows, cols], dataType: DT.UINT8, rawData: qu },
        floatTensor('s', [rows], scales),
        { name: 'zp', dims: [rows], dataType: DT.INT8, rawData: new Uint8Array(zps.buffer) },
        { name: 'zpu', dims: [], dataType: DT.UINT8, rawData: Uint8Array.of(128) },
      ],
    };
    const g = new GraphIndex(graph, 'q.onnx');
    const axis = g.readWeight('w_axis');
    assert.deepEqual(axis.dims, [rows, cols]);
    for (let i = 0; i < rows * cols; i++) {
      const r = Math.floor(i / cols);
      assert.ok(Math.abs(axis.data[i] - (q[i] - zps[r]) * scales[r]) < 1e-6 * Math.abs((q[i] - zps[r]) * scales[r]) + 1e-9);
    }
    assert.deepEqual(Array.from(g.readWeight('w_alias').data), Array.from(q, (v) => v * 0.5));
    assert.throws(() => g.readWeight('nope'), /q\.onnx: weight: expected a tensor of the graph, received 'nope'; the graph's tensors are 'q', 'qu', 's', 'zp', 'zpu'/);
  });
});

describe('classifier heads', () => {
  for (const op of ['gemm', 'matmul', 'conv'] as const) {
    test(`${op} head: found from the graph output (through Softmax), W and c read, logits = W e + c`, async () => {
      const classes = 6;
      const net = convNet({ input: { size: [12, 12] }, layers: LAYERS, head: { classes, op, softmax: true }, rng: seeded((rng() * 2 ** 32) >>> 0) });
      const g = new GraphIndex(net.model.graph, 'net.onnx');
      const found = findHead(g, logitsBeforeSoftmax(g, g.outputNames()[0]));
      assert.ok(!('reason' in found), JSON.stringify(found));
      assert.equal(found.op, op === 'gemm' ? 'Gemm' : op === 'matmul' ? 'MatMul' : 'Conv');
      assert.equal(found.logits, 'logits');
      assert.equal(found.embedding, net.embedding);
      assert.deepEqual([found.weight, found.bias, found.transposed, found.classes, found.dim], ['fc.weight', 'fc.bias', op === 'matmul', classes, 10]);
      const head = readHead(g, found);
      assert.deepEqual(head.W.shape, [classes, 10]);
      assert.deepEqual(head.c, net.weights.get('fc.bias')!.data);
      const out = await runModel(withOutputs(net.model, [found.embedding, 'logits']), { input: { data: randomImages(3, 3, 12, 12), dims: [3, 3, 12, 12] } });
      const e = out[found.embedding].data;
      for (let i = 0; i < 3; i++) {
        const want = Array.from({ length: classes }, (_, k) => {
          let s = head.c[k];
          for (let d = 0; d < 10; d++) s += head.W.get(k, d) * e[i * 10 + d];
          return s;
        });
        assert.ok(relErr(out.logits.data.subarray(i * classes, (i + 1) * classes), want) < 1e-5);
      }
    });
  }

  test('quantised (int8 + DequantizeLinear) and float16 (+ Cast) heads read as float32 W', () => {
    const classes = 3, dim = 4;
    const q = Int8Array.from({ length: classes * dim }, () => Math.floor(rng() * 200) - 100);
    const halfBits = Array.from({ length: dim * classes }, () => 0x3c00 + Math.floor(rng() * 0x400)); // values in [1, 2)
    const graph: onnx.IGraphProto = {
      node: [
        node('DequantizeLinear', ['wq', 'ws'], ['w']),
        node('Gemm', ['e', 'w', 'b'], ['logits'], { transB: 1 }),
        node('Cast', ['w16'], ['w32'], { to: DT.FLOAT }),
        node('MatMul', ['e', 'w32'], ['mm']),
        node('Add', ['b', 'mm'], ['logits2']),
      ],
      initializer: [
        { name: 'wq', dims: [classes, dim], dataType: DT.INT8, rawData: new Uint8Array(q.buffer) },
        floatTensor('ws', [], Float32Array.of(0.25)),
        floatTensor('b', [classes], Float32Array.of(1, 2, 3)),
        { name: 'w16', dims: [dim, classes], dataType: DT.FLOAT16, int32Data: halfBits },
      ],
      input: [valueInfo('e', [null, dim])],
      output: [valueInfo('logits', [null, classes]), valueInfo('logits2', [null, classes])],
    };
    const g = new GraphIndex(graph, 'q.onnx');
    const a = findHead(g, 'logits');
    assert.ok(!('reason' in a));
    assert.deepEqual(Array.from(readHead(g, a).W.data), Array.from(q, (v) => v * 0.25));
    const b = findHead(g, 'logits2');
    assert.ok(!('reason' in b));
    assert.equal(b.transposed, true);
    const W = readHead(g, b).W;
    for (let k = 0; k < classes; k++) for (let d = 0; d < dim; d++) assert.equal(W.get(k, d), halfToFloat(halfBits[d * classes + k]));
  });

  test('graphs without a readable head give the reason', () => {
    const graph: onnx.IGraphProto = {
      node: [
        node('Gemm', ['e', 'w', 'b'], ['scaled'], { transB: 1, alpha: 0.5 }),
        node('MatMul', ['e', 'x2'], ['dyn']),
        node('Relu', ['e'], ['act']),
        node('Conv', ['img', 'cw'], ['map'], { kernel_shape: [1, 1] }),
      ],
      initializer: [floatTensor('w', [2, 3], new Float32Array(6)), floatTensor('b', [2], new Float32Array(2)), floatTensor('cw', [2, 3, 1, 1], new Float32Array(6))],
      input: [valueInfo('e', [null, 3]), valueInfo('x2', [3, 2]), valueInfo('img', [null, 3, 8, 8])],
      output: [valueInfo('scaled', [null, 2])],
    };
    const g = new GraphIndex(graph, 'm');
    assert.match((findHead(g, 'scaled') as { reason: string }).reason, /alpha or beta set/);
    assert.match((findHead(g, 'dyn') as { reason: string }).reason, /input B 'x2' is not a constant matrix/);
    assert.match((findHead(g, 'act') as { reason: string }).reason, /computed by Relu/);
    assert.match((findHead(g, 'map') as { reason: string }).reason, /not a pooled \(N x C x 1 x 1\) tensor/);
    assert.throws(() => findHead(g, 'missing'), UnknownTensorError);
  });

  test('heads read from two graphs feed WeightsEstimator.fitHeads', async () => {
    const classes = 5;
    const a = convNet({ input: { size: [12, 12] }, layers: LAYERS, head: { classes }, rng: seeded(11) });
    const b = convNet({ input: { size: [12, 12] }, layers: [{ op: 'conv', out: 12, kernel: 3 }, { op: 'gap' }], head: { classes, op: 'conv' }, rng: seeded(12) });
    const head = (net: ConvNet) => {
      const g = new GraphIndex(net.model.graph, 'net');
      const h = findHead(g, 'logits');
      assert.ok(!('reason' in h));
      return readHead(g, h);
    };
    const ha = head(a), hb = head(b);
    const est = await new WeightsEstimator().fitHeads(ha, hb);
    // B's head on the mapped embedding reproduces A's logits up to a constant per row (12 >= 5 classes: exact).
    const X = new Matrix(Float64Array.from({ length: 4 * 10 }, () => rng()), 4, 10);
    const Y = await est.transform(X);
    for (let i = 0; i < 4; i++) {
      const la = Array.from({ length: classes }, (_, k) => ha.c[k] + Array.from(X.row(i)).reduce((s, v, d) => s + v * ha.W.get(k, d), 0));
      const lb = Array.from({ length: classes }, (_, k) => hb.c[k] + Array.from(Y.row(i)).reduce((s, v, d) => s + v * hb.W.get(k, d), 0));
      const shift = la[0] - lb[0];
      assert.ok(relErr(lb.map((v) => v + shift), la) < 1e-4);
    }
  });
});

test('model() writes an opset-13 model ONNX Runtime loads; a hand-built Gemm graph gives its known output', async () => {
  const m = model({
    node: [node('Gemm', ['x', 'w', 'b'], ['y'], { transB: 1 })],
    initializer: [floatTensor('w', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6)), floatTensor('b', [2], Float32Array.of(0.5, -0.5))],
    input: [valueInfo('x', [null, 3])],
    output: [valueInfo('y', [null, 2])],
  });
  const out = await runModel(m, { x: { data: Float32Array.of(1, 0, -1, 2, 2, 2), dims: [2, 3] } });
  assert.deepEqual(Array.from(out.y.data), [1 - 3 + 0.5, 4 - 6 - 0.5, 12 + 0.5, 30 - 0.5]);
});
