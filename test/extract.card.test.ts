// Model cards: strict validation with named fields, defaults read from the graph (layout, size,
// embedding, logits, head; a probe run for undeclared sizes), partial cards completed, a card that
// does not match its model refused before any image is read, and the runner's provider choice.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, mock, test } from 'node:test';
import sharedFs = require('node:fs');
import { makeRng as seeded } from '../src/evaluate/split';
import { ModelRunner, PreparedModel } from '../src/extract/runner';
import { FileFormatError } from '../src/io/binary';
import type { ModelCard } from '../src/models/card';
import { modelHandle, openHandle } from '../src/models/handle';
import { cardFromOnnx, checkCardAgainstModel, loadCard, resolveModel, validateCard } from '../src/models/load';
import { type LayerSpec, convNet } from './helpers/cnn';
import { METADATA_KEY } from '../src/models/draft';
import { preset } from '../src/models/presets';
import { GraphIndex, UnknownTensorError } from '../src/onnx/graph';
import { findHead, readHead } from '../src/onnx/head';
import { model, node, valueInfo, writeModel } from '../src/onnx/proto';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('extract.card.test');
const dir = tempDir();
const LAYERS: LayerSpec[] = [{ op: 'conv', out: 8, kernel: 3, stride: 2 }, { op: 'gap' }];

function writeNet(name: string, spec: Partial<Parameters<typeof convNet>[0]> = {}) {
  const net = convNet({ input: { size: [20, 24] }, layers: LAYERS, head: { classes: 5 }, rng: seeded((rng() * 2 ** 32) >>> 0), ...spec });
  const file = path.join(dir, name);
  writeModel(file, net.model);
  return { net, file };
}

const validCard = (): ModelCard => ({
  id: 'net',
  onnx: 'net.onnx',
  input: { name: 'input', size: [20, 24], layout: 'NCHW', channels: 'BGR', scale: 1, mean: [104, 117, 123], std: [1, 1, 1], resize: 'stretch' },
  embedding: { tensor: 'embedding', dim: 8 },
  logits: { tensor: 'logits', classes: 5, head: { weight: 'fc.weight', bias: 'fc.bias' }, labelOffset: -1 },
  source: 'test',
});

describe('validateCard', () => {
  test('a complete card is returned as given', () => {
    assert.deepEqual(validateCard(validCard(), 'c.json'), validCard());
  });

  const cases: [string, (c: any) => void, RegExp][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['misspelt field', (c) => { c.embeding = c.embedding; }, /c\.json: card\.embeding: expected one of the fields id, onnx, input, embedding, logits, source/],
    ['missing id', (c) => { delete c.id; }, /c\.json: id: expected a non-empty string, found undefined/],
    ['size of 3', (c) => { c.input.size = [1, 2, 3]; }, /input\.size: expected \[height, width\], found Array\(3\)/],
    ['fractional height', (c) => { c.input.size = [2.5, 3]; }, /input\.size\[0\]: expected an integer >= 1, found number 2\.5/],
    ['layout', (c) => { c.input.layout = 'CHW'; }, /input\.layout: expected one of 'NCHW', 'NHWC', found string "CHW"/],
    ['channels', (c) => { c.input.channels = 'rgb'; }, /input\.channels: expected one of 'RGB', 'BGR', found string "rgb"/],
    ['zero std', (c) => { c.input.std = [1, 0, 1]; }, /input\.std\[1\]: expected a finite number > 0, found number 0/],
    ['mean of 1', (c) => { c.input.mean = [0.5]; }, /input\.mean: expected an array of 3 numbers \(one per channel, R G B\), found Array\(1\)/],
    ['scale NaN', (c) => { c.input.scale = NaN; }, /input\.scale: expected a finite number > 0, found number NaN/],
    ['resize', (c) => { c.input.resize = 'fit'; }, /input\.resize: expected one of 'crop', 'stretch', 'pad'/],
    ['crop above 1', (c) => { (c.input as { crop?: number }).crop = 1.5; }, /input\.crop: expected a fraction in \(0, 1\], found number 1\.5/],
    ['crop centre outside', (c) => { (c.input as { cropCentre?: number[] }).cropCentre = [0.5, 1.2]; }, /input\.cropCentre: expected an array of 2 fractions in \[0, 1\] \(x, y\), found Array\(2\)/],
    ['dim 0', (c) => { c.embedding.dim = 0; }, /embedding\.dim: expected an integer >= 1, found number 0/],
    ['classes string', (c) => { c.logits.classes = '5'; }, /logits\.classes: expected an integer >= 1, found string "5"/],
    ['head transposed', (c) => { c.logits.head.transposed = 'yes'; }, /logits\.head\.transposed: expected a boolean, found string "yes"/],
    ['head field', (c) => { c.logits.head.W = 'x'; }, /logits\.head\.W: expected one of the fields weight, bias, transposed/],
    ['not an object', (c) => { c.input = [1]; }, /input: expected an object, found Array\(1\)/],
  ];
  for (const [name, mutate, pattern] of cases) {
    test(`rejects: ${name}`, () => {
      const c = validCard();
      mutate(c);
      assert.throws(() => validateCard(c, 'c.json'), (err: unknown) => {
        assert.ok(err instanceof FileFormatError);
        assert.equal(err.path, 'c.json');
        assert.match(err.message, pattern);
        return true;
      });
    });
  }
});

describe('loadCard and resolveModel', () => {
  test('loadCard resolves the ONNX file against the card\'s folder; bad files are named', () => {
    const { file } = writeNet('net.onnx');
    const cardFile = path.join(dir, 'net.card.json');
    fs.writeFileSync(cardFile, JSON.stringify(validCard()));
    const loaded = loadCard(cardFile);
    assert.equal(loaded.onnxPath, file);
    assert.deepEqual(loaded.origins, {});
    fs.writeFileSync(path.join(dir, 'bad.json'), '{ "id": ');
    assert.throws(() => loadCard(path.join(dir, 'bad.json')), /bad\.json: expected a JSON model card/);
    fs.writeFileSync(path.join(dir, 'missing.json'), JSON.stringify({ ...validCard(), onnx: 'nowhere.onnx' }));
    assert.throws(() => loadCard(path.join(dir, 'missing.json')), /missing\.json: onnx: expected an existing ONNX file, 'nowhere\.onnx' resolves to .*nowhere\.onnx, which does not exist/);
    assert.throws(() => loadCard(path.join(dir, 'absent.json')), /absent\.json: cannot read the model card/);
  });

  test('cardFromOnnx: nothing assumed; a preset completes the card, the graph gives input, layout, size, head and embedding', async () => {
    const { file } = writeNet('gemm.onnx', { head: { classes: 5, softmax: true } });
    await assert.rejects(cardFromOnnx(file), (err: Error) => {
      assert.match(err.message, /gemm\.onnx: cannot run this model without input\.channels, input\.scale, input\.mean, input\.std, input\.resize: neither a card, the graph nor its metadata says/);
      assert.match(err.message, /--preset NAME \(imagenet, imagenet-tf, arcface-rgb, .*\), or let 'embmap card probe MODEL\.onnx --faces\|--classes' find and write one/);
      return true;
    });
    const { card, origins, onnxPath } = await cardFromOnnx(file, { preset: 'imagenet' });
    assert.equal(onnxPath, file);
    assert.deepEqual(card, {
      id: 'gemm',
      onnx: 'gemm.onnx',
      input: { ...preset('imagenet').input, whiten: false, name: 'input', size: [20, 24], layout: 'NCHW' },
      embedding: { tensor: 'embedding', dim: 8 },
      logits: { tensor: 'logits', classes: 5, head: { weight: 'fc.weight', bias: 'fc.bias', transposed: false } },
    });
    assert.deepEqual(origins, {
      'input.name': 'graph', 'input.layout': 'graph', 'input.size': 'graph', 'input.channels': 'preset imagenet', 'input.scale': 'preset imagenet',
      'input.mean': 'preset imagenet', 'input.std': 'preset imagenet', 'input.resize': 'preset imagenet', 'input.whiten': 'preset imagenet', 'embedding.tensor': 'graph', logits: 'graph',
    });
    await assert.rejects(cardFromOnnx(file, { preset: 'imagenet1k' }), /preset: expected one of imagenet, imagenet-tf, .*, received string "imagenet1k"/);
  });

  test('cardFromOnnx: NHWC, a symbolic size (the preset\'s), a MatMul head, no head, an undeclared output size, metadata', async () => {
    const nhwc = await cardFromOnnx(writeNet('nhwc.onnx', { input: { size: [16, 16], layout: 'NHWC' }, head: { classes: 3, op: 'matmul' } }).file, { preset: 'imagenet' });
    assert.equal(nhwc.card.input.layout, 'NHWC');
    assert.deepEqual(nhwc.card.logits!.head, { weight: 'fc.weight', bias: 'fc.bias', transposed: true });
    const headless = await cardFromOnnx(writeNet('headless.onnx', { head: undefined }).file, { preset: 'arcface-bgr' });
    assert.deepEqual(headless.card.embedding, { tensor: 'embedding', dim: 8 });
    assert.equal(headless.card.logits, undefined);
    // Symbolic H, W and an output declared without a shape: the size is missing unless given, the dim learned by a probe run.
    const m = model({
      node: [node('GlobalAveragePool', ['img'], ['pool']), node('Flatten', ['pool'], ['feat'])],
      input: [valueInfo('img', ['N', 3, 'H', 'W'])],
      output: [{ name: 'feat', type: { tensorType: { elemType: 1 } } }],
    });
    writeModel(path.join(dir, 'sym.onnx'), m);
    await assert.rejects(cardFromOnnx(path.join(dir, 'sym.onnx')), /sym\.onnx: cannot run this model without input\.size, input\.channels/);
    const sym = await cardFromOnnx(path.join(dir, 'sym.onnx'), { preset: 'facenet' });
    assert.deepEqual(sym.card.input.size, [160, 160]);
    assert.equal(sym.origins['input.size'], 'preset facenet');
    assert.equal(sym.card.input.whiten, true);
    assert.deepEqual(sym.card.embedding, { tensor: 'feat', dim: 3 });
    // A partial card in the file's metadata settles what it names; a preset (a flag) still wins.
    m.metadataProps = [{ key: METADATA_KEY, value: JSON.stringify({ id: 'meta', input: { size: [40, 30], channels: 'BGR', scale: 1, mean: [127.5, 127.5, 127.5], std: [128, 128, 128], resize: 'stretch' } }) }];
    writeModel(path.join(dir, 'meta.onnx'), m);
    const meta = await cardFromOnnx(path.join(dir, 'meta.onnx'));
    assert.deepEqual([meta.card.id, meta.card.input.size, meta.card.input.channels, meta.origins['input.std']], ['meta', [40, 30], 'BGR', 'metadata']);
    assert.equal((await cardFromOnnx(path.join(dir, 'meta.onnx'), { preset: 'arcface-rgb' })).card.input.channels, 'RGB');
  });

  test('cardFromOnnx: models it cannot read as image models say why', async () => {
    const two = model({ node: [node('Add', ['a', 'b'], ['c'])], input: [valueInfo('a', [null, 3, 8, 8]), valueInfo('b', [null, 3, 8, 8])], output: [valueInfo('c', [null, 3, 8, 8])] });
    writeModel(path.join(dir, 'two.onnx'), two);
    await assert.rejects(cardFromOnnx(path.join(dir, 'two.onnx')), /two\.onnx: expected one image input, the graph has 2 \('a', 'b'\); name it in a card \(input\.name\)/);
    const grey = model({ node: [node('Relu', ['a'], ['c'])], input: [valueInfo('a', [null, 1, 8, 8])], output: [valueInfo('c', [null, 1, 8, 8])] });
    writeModel(path.join(dir, 'grey.onnx'), grey);
    await assert.rejects(cardFromOnnx(path.join(dir, 'grey.onnx')), /grey\.onnx: input 'a': expected N x 3 x H x W or N x H x W x 3 images, the graph declares \[N,1,8,8\]/);
    fs.writeFileSync(path.join(dir, 'junk.onnx'), 'not a protobuf at all, really');
    await assert.rejects(cardFromOnnx(path.join(dir, 'junk.onnx')), /junk\.onnx: /);
  });

  test('resolveModel: a partial card is completed from the graph; given fields win; what is missing is named', async () => {
    writeNet('partial.onnx');
    const file = path.join(dir, 'partial.json');
    const partial = { onnx: 'partial.onnx', id: 'mine', input: { channels: 'BGR', mean: [0, 0, 0], std: [1, 1, 1] } };
    fs.writeFileSync(file, JSON.stringify(partial));
    // A 8 -> 5 linear layer with nothing after it: a projection or a classifier, so the embedding is not settled either.
    await assert.rejects(resolveModel(file), (err: Error) => {
      assert.match(err.message, /partial\.json: cannot run this model without input\.scale, input\.resize, embedding\.tensor/);
      assert.match(err.message, /2 candidate embedding tensors: 'logits' \(the output of Gemm 8 -> 5, if it is an embedding projection\); 'embedding' \(the input of Gemm 8 -> 5, if it is a classifier\)/);
      return true;
    });
    fs.writeFileSync(file, JSON.stringify({ ...partial, input: { ...partial.input, scale: 1, resize: 'stretch' }, embedding: { tensor: 'embedding' } }));
    const { card, origins, source } = await resolveModel(file);
    assert.equal(source, file);
    assert.equal(card.id, 'mine');
    assert.deepEqual([card.input.channels, card.input.mean, card.input.std, card.input.scale], ['BGR', [0, 0, 0], [1, 1, 1], 1]);
    assert.deepEqual(card.input.size, [20, 24]);
    assert.deepEqual([origins['input.size'], origins['input.scale'], origins['embedding.tensor']], ['graph', 'card', 'card']);
    // The card names the head's input: the Gemm reading it is the classifier.
    assert.deepEqual([card.embedding.dim, card.logits!.classes], [8, 5]);
    // A card with an embedding and no logits, or "logits": null, never gets a head whose sizes do not match.
    fs.writeFileSync(file, JSON.stringify({ ...partial, input: { ...partial.input, scale: 1, resize: 'stretch' }, embedding: { tensor: 'logits' } }));
    assert.deepEqual([(await resolveModel(file)).card.embedding.dim, (await resolveModel(file)).card.logits], [5, undefined]);
    fs.writeFileSync(file, JSON.stringify({ ...partial, input: { ...partial.input, scale: 1, resize: 'stretch' }, embedding: { tensor: 'embedding' }, logits: null }));
    assert.equal((await resolveModel(file)).card.logits, undefined);
    fs.writeFileSync(file, JSON.stringify({ input: {} }));
    await assert.rejects(resolveModel(file), /partial\.json: onnx: expected the model's file name \(relative to the card\), found undefined/);
    fs.writeFileSync(file, JSON.stringify({ ...partial, onnx: '../elsewhere/partial.onnx' }));
    // A card may name a model elsewhere (it is the user's configuration), but it must exist.
    await assert.rejects(resolveModel(file), /partial\.json: onnx: expected an existing ONNX file, '\.\.\/elsewhere\/partial\.onnx' resolves to .*elsewhere\/partial\.onnx, which does not exist/);
  });
});

describe('cards against their models', () => {
  const { net, file } = writeNet('check.onnx');
  const g = new GraphIndex(net.model.graph, file);
  const card = () => ({ ...validCard(), onnx: 'check.onnx' });

  test('the matching card passes', () => {
    checkCardAgainstModel(card(), g);
  });

  test('wrong input name, size, layout; missing tensors list the names that exist; wrong sizes', () => {
    const c1 = card();
    c1.input = { ...c1.input, name: 'data' };
    assert.throws(() => checkCardAgainstModel(c1, g), /check\.onnx: input\.name: expected one of the graph's inputs 'input', received 'data'/);
    const c2 = card();
    c2.input = { ...c2.input, size: [224, 224] };
    assert.throws(() => checkCardAgainstModel(c2, g), /input 'input': the card describes NCHW 224x224 RGB images \[N, 3, 224, 224\], the graph declares \[N, 3, 20, 24\]/);
    const c3 = card();
    c3.input = { ...c3.input, layout: 'NHWC' };
    assert.throws(() => checkCardAgainstModel(c3, g), /the card describes NHWC 20x24 RGB images \[N, 20, 24, 3\], the graph declares \[N, 3, 20, 24\]/);
    const c4 = card();
    c4.embedding = { tensor: 'pool5', dim: 8 };
    assert.throws(() => checkCardAgainstModel(c4, g), (err: unknown) => err instanceof UnknownTensorError && /embedding\.tensor: expected a tensor of the graph, received 'pool5'; the graph's tensors are 'input', 'conv0', 'conv0\.relu', 'pool', 'embedding', 'logits'/.test(err.message));
    const c5 = card();
    c5.logits = { tensor: 'logits', classes: 6 };
    assert.throws(() => checkCardAgainstModel(c5, g), /logits\.classes: the card says 6, the graph declares 'logits' with dims \[N,5\] \(5 values per image\)/);
    const c6 = card();
    c6.logits = { tensor: 'logits', classes: 5, head: { weight: 'fc.weight', transposed: true } };
    assert.throws(() => checkCardAgainstModel(c6, g), /logits\.head\.weight 'fc\.weight': expected 5 x 8 \(classes x embedding dim, stored transposed\), found dims \[5,8\]/);
    const c7 = card();
    c7.logits = { tensor: 'logits', classes: 5, head: { weight: 'fc.wieght' } };
    assert.throws(() => checkCardAgainstModel(c7, g), /weight: expected a tensor of the graph, received 'fc\.wieght'; the graph's tensors are 'conv0\.weight', 'conv0\.bias', 'fc\.weight', 'fc\.bias'/);
  });

  test('ModelRunner: the probe run catches a wrong dim the graph does not declare; logits need a logits tensor', async () => {
    const cardFile = path.join(dir, 'probe.json');
    // 'pool' is undeclared (N x 8 x 1 x 1 at run time): a card claiming 16 fails when opened.
    const wrongDim = { ...card(), embedding: { tensor: 'pool', dim: 16 } } as ModelCard;
    delete wrongDim.logits;
    fs.writeFileSync(cardFile, JSON.stringify(wrongDim));
    await assert.rejects(ModelRunner.open(loadCard(cardFile)), /probe\.json: embedding: the card says 'pool' has dim 16 per image, the model gives dims \[1,8,1,1\] for a batch of 1/);
    const noLogits = { ...card() } as ModelCard;
    delete noLogits.logits;
    fs.writeFileSync(cardFile, JSON.stringify(noLogits));
    await assert.rejects(ModelRunner.open(loadCard(cardFile), { logits: true }), /probe\.json: logits: expected the card to name a logits tensor \(logits\.tensor\) since logits were requested, found none/);
  });

  test('ModelRunner: embeddings and logits of one run; the head it reads gives the logits', async () => {
    const cardFile = path.join(dir, 'run.json');
    fs.writeFileSync(cardFile, JSON.stringify(card()));
    const runner = await ModelRunner.open(loadCard(cardFile), { logits: true });
    try {
      // A prepared model has chosen its fetches: a contradicting logits is refused, not ignored.
      await assert.rejects(ModelRunner.open(PreparedModel.prepare(loadCard(cardFile)), { logits: true }), /options\.logits: the model was prepared without logits, received true: prepare it with \{ logits: true \} instead/);
      assert.equal(runner.provider, 'cpu');
      const n = 3, x = Float32Array.from({ length: n * 3 * 20 * 24 }, () => rng() * 2 - 1);
      const { embeddings, logits } = await runner.run(x, n);
      assert.equal(embeddings.length, n * 8);
      const head = readHead(g, { weight: 'fc.weight', bias: 'fc.bias' });
      // The head found in the graph before the logits tensor is the card's.
      const found = findHead(g, card().logits!.tensor);
      assert.ok(!('reason' in found), JSON.stringify(found));
      assert.deepEqual(readHead(g, found), head);
      for (let i = 0; i < n; i++) {
        const want = Array.from({ length: 5 }, (_, k) => head.c[k] + Array.from({ length: 8 }, (_, d) => head.W.get(k, d) * embeddings[i * 8 + d]).reduce((a, b) => a + b, 0));
        assert.ok(relErr(logits!.subarray(i * 5, i * 5 + 5), want) < 1e-5);
      }
    } finally {
      await runner.close();
    }
  });

  test('ModelRunner: a graph with a fixed batch of 1 runs any batch, image by image', async () => {
    const fixed = convNet({ input: { size: [10, 10] }, layers: LAYERS, head: { classes: 2 }, rng: seeded(3) });
    fixed.model.graph!.input![0] = valueInfo('input', [1, 3, 10, 10]);
    const f = path.join(dir, 'fixed.onnx');
    writeModel(f, fixed.model);
    const runner = await ModelRunner.open(await cardFromOnnx(f, { preset: 'imagenet' }), { logits: true });
    const free = await ModelRunner.open(await cardFromOnnx(writeNet('free.onnx', { input: { size: [10, 10] }, head: { classes: 2 }, rng: seeded(3) }).file, { preset: 'imagenet' }), { logits: true });
    try {
      assert.equal(runner.fixedBatch, 1);
      const x = Float32Array.from({ length: 3 * 300 }, () => rng());
      const a = await runner.run(x, 3), b = await free.run(x, 3);
      assert.ok(relErr(a.embeddings, b.embeddings) < 1e-6);
      assert.ok(relErr(a.logits!, b.logits!) < 1e-6);
    } finally {
      await runner.close();
      await free.close();
    }
  });

  test("device 'cuda' without the CUDA provider is a clear error; 'auto' falls back to the CPU and says why", async () => {
    const loaded = await cardFromOnnx(file, { preset: 'imagenet' });
    let cuda: ModelRunner | undefined;
    try {
      cuda = await ModelRunner.open(loaded, { device: 'cuda' });
    } catch (err) {
      assert.match((err as Error).message, /check\.onnx: device 'cuda': the CUDA execution provider could not be loaded \(.+\); .*ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install.*or choose device 'cpu' or 'auto'/);
    }
    if (cuda) {
      // A machine with the CUDA build: the provider is reported.
      assert.equal(cuda.provider, 'cuda');
      await cuda.close();
    }
    const auto = await ModelRunner.open(loaded, { device: 'auto' });
    try {
      assert.ok(auto.provider === 'cuda' || (auto.provider === 'cpu' && typeof auto.fallback === 'string'), `${auto.provider} ${auto.fallback}`);
    } finally {
      await auto.close();
    }
    await assert.rejects(ModelRunner.open(loaded, { device: 'gpu' as 'cuda' }), /options\.device: expected one of 'cpu', 'cuda', 'auto', received string "gpu"/);
  });
});

describe('model handles', () => {
  test('a model is read and decoded once from resolution to its handle; a card not from resolution is read by its handle', async () => {
    const { file } = writeNet('once.onnx');
    const other = writeNet('other.onnx').file;
    const cardFile = path.join(dir, 'once.json');
    fs.writeFileSync(cardFile, JSON.stringify({ ...validCard(), onnx: 'once.onnx' }));
    // Counts the reads of the ONNX file through the fs module object every embmap module shares.
    const readFileSync = sharedFs.readFileSync;
    const spy = mock.method(sharedFs, 'readFileSync');
    const reads = () => spy.mock.calls.filter((c) => [file, other].includes(path.resolve(String(c.arguments[0])))).length;
    try {
      const handle = await openHandle(cardFile);
      assert.equal(reads(), 1, 'openHandle(card path): one read');
      assert.equal(handle.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
      assert.ok(handle.bytes.equals(readFileSync(file)));
      const loaded = await resolveModel(cardFile);
      assert.equal(reads(), 2);
      modelHandle(loaded);
      assert.equal(reads(), 2, 'the handle of a resolved card reuses what resolution read');
      // Taken once: a second handle of the same card reads the file again, as does a card from loadCard.
      modelHandle(loaded);
      modelHandle(loadCard(cardFile));
      assert.equal(reads(), 4);
      // A card pointed at another file after resolution: the handle reads that file, not what resolution read.
      const moved = await resolveModel(cardFile);
      moved.onnxPath = other;
      const h = modelHandle(moved);
      assert.ok(h.bytes.equals(readFileSync(other)));
      assert.equal(reads(), 6, 'once for the resolution, once for the handle');
    } finally {
      spy.mock.restore();
    }
  });
});
