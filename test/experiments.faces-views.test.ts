// The face experiment with views (`embmap experiment faces --views K`) on demo/'s LFW with two tiny
// random networks of different input specs: K rows per fitting image named id#vK, each network's
// row the view applied to the shared aligned face and then that network's own window and
// preprocessing (every network saw the same pixels), view 0 the plain image, the evaluated images
// never augmented (native results identical to a run without views), the maps fitted on the views'
// rows, a cached view file of other rows refused, and a bad count refused before any work.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { lfwDataset } from '../src/datasets';
import { fitMap, type FitMapOptions } from '../src/estimators/fit-map';
import { windowInput } from '../src/experiments/face-crops';
import { runFaces } from '../src/experiments/faces';
import { ModelRunner } from '../src/extract/runner';
import { alignImages } from '../src/faces/stage';
import { decodeImage, inputSize, preprocessInto } from '../src/images/preprocess';
import { applyView, imageOfViewId, viewId, viewParams } from '../src/images/views';
import { loadEmbeddings, type LoadedEmbeddingSet } from '../src/io/embeddings';
import { loadCard } from '../src/models/load';
import { writeSmallCard } from './helpers/cnn';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const LFW = path.join(__dirname, '..', '..', 'demo', 'lfw');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-faceviews-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const rng = makeRng('experiments.faces-views.test');
const K = 3;
const seed = (rng() * 2 ** 32) >>> 0;
const cards = [
  writeSmallCard(work, 'neta', { size: [32, 32], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'crop' }, rng),
  writeSmallCard(work, 'netb', { size: [40, 48], layout: 'NHWC', channels: 'BGR', scale: 1, mean: [104, 117, 123], std: [58, 57, 57], resize: 'pad', crop: 0.66, cropCentre: [0.5, 0.58] }, rng),
];
const cfg = { lfw: LFW, models: cards, work, fitImages: 30, seed, pairCurve: [10, 30], rankCurve: [2], curvePair: { source: 'netb', target: 'neta' } };

/** The embeddings of `model` in the work folder's embedding folder named by `match`. */
function embeddingsOf(match: (dir: string) => boolean, model: string): LoadedEmbeddingSet {
  const dirs = fs.readdirSync(path.join(work, 'embeddings')).filter(match);
  assert.equal(dirs.length, 1, `one embedding folder, found ${dirs.join(', ')}`);
  const dir = path.join(work, 'embeddings', dirs[0]);
  const [file] = fs.readdirSync(dir).filter((f) => f.startsWith(`${model}-`) && f.endsWith('.npy') && !f.endsWith('.logits.npy'));
  return loadEmbeddings(path.join(dir, file));
}

test('faces --views: K rows per fitting image, the same pixels for every network, test images plain, maps fitted on the views', async () => {
  await assert.rejects(runFaces({ ...cfg, views: 0 }), /^RangeError: views\.count: expected an integer in \[1, 1000\], received number 0/);
  await assert.rejects(runFaces({ ...cfg, curvePair: { source: 'neta', target: 'neta' } }), /^RangeError: curvePair: expected two distinct model ids of neta, netb, received string "neta -> neta"/);
  const plain = await runFaces(cfg);
  const r = await runFaces({ ...cfg, views: K });
  assert.equal(plain.views, 1);
  assert.equal(plain.fitRows, 30);
  assert.equal(r.views, K);
  assert.equal(r.fitPairs, 30);
  assert.equal(r.fitRows, 30 * K);
  // The evaluated images are embedded once, without views: the native results do not change.
  assert.deepEqual(r.models, plain.models);
  assert.deepEqual(r.curves.pairs.map(([n]) => n), [10, 30], 'the curve counts distinct images');
  assert.deepEqual([r.curves.source, r.curves.target, plain.curves.source], ['netb', 'neta', 'netb'], 'the curves of the pair asked for');

  const lfw = lfwDataset(LFW);
  const evaluated = new Set(lfw.pairs!.flatMap((p) => [p.a, p.b]));
  const path0 = new Map(lfw.items.map((it) => [it.id, it.path]));
  const viewsOf = (model: string) => embeddingsOf((d) => d.includes(`-30-views${K}-seed${seed}-`), model);
  const plainOf = (model: string) => embeddingsOf((d) => d.startsWith('lfw-') && !d.includes('-views'), model);
  const a = viewsOf('neta'), b = viewsOf('netb');
  assert.equal(a.matrix.rows, 30 * K);
  assert.deepEqual(b.ids, a.ids);
  const images = a.ids.filter((_, r) => r % K === 0).map(imageOfViewId);
  assert.deepEqual(a.ids, images.flatMap((id) => Array.from({ length: K }, (_, k) => viewId(id, k))), 'rows id#v0..id#vK-1, image by image');
  assert.equal(new Set(images).size, 30);
  for (const id of images) assert.ok(!evaluated.has(id), `${id}: a fitting image among the evaluated pairs`);

  // Each network's row of a view: the view applied to the aligned face here, then that network's window and preprocessing.
  const aligned = await alignImages(images.slice(0, 2).map((id) => path0.get(id)!), { cache: path.join(work, 'align'), fallback: 'centre' });
  for (const [m, card] of [['neta', cards[0]], ['netb', cards[1]]] as const) {
    const loaded = loadCard(card);
    loaded.card.input = windowInput(loaded.card.input, r.windows![m]);
    const runner = await ModelRunner.open(loaded);
    const rows = m === 'neta' ? a : b, plainRows = plainOf(m);
    try {
      for (let i = 0; i < 2; i++) {
        const face = await decodeImage(aligned.images[i].crop!);
        for (let k = 0; k < K; k++) {
          const v = viewParams(seed, images[i], k);
          const input = new Float32Array(inputSize(runner.spec));
          await preprocessInto(v ? applyView(face, v) : face, runner.spec, input, 0);
          const want = (await runner.run(input, 1)).embeddings;
          assert.ok(relErr(rows.matrix.row(i * K + k), want) < 1e-5, `${m}: ${viewId(images[i], k)}`);
        }
        assert.deepEqual(rows.matrix.row(i * K), plainRows.matrix.row(plainRows.ids.indexOf(images[i])), `${m}: view 0 is the plain aligned image`);
        assert.ok(relErr(rows.matrix.row(i * K + 1), rows.matrix.row(i * K)) > 1e-3, `${m}: view 1 differs from the plain image`);
      }
    } finally {
      await runner.close();
    }
  }

  // The maps were fitted on the views' rows: GCV's lambda on them, by hand, is the experiment's (and not the plain run's).
  const byHand = await fitMap(a.matrix, b.matrix, { method: 'ridge', lambda: 'gcv', validation: 'none' } as FitMapOptions);
  const lambda = Number(byHand.map.metadata.diagnostics.lambda);
  const cross = r.crosses.find((c) => c.source === 'neta')!;
  assert.ok(Math.abs(cross.lambda! - lambda) <= 1e-9 * lambda, `lambda ${cross.lambda} against ${lambda} fitted on the views by hand`);
  assert.notEqual(cross.lambda, plain.crosses.find((c) => c.source === 'neta')!.lambda);

  // A cached view file whose rows are not these views (two rows swapped) is an error, not wrong rows.
  const dir = path.join(work, 'embeddings', fs.readdirSync(path.join(work, 'embeddings')).find((d) => d.includes(`-views${K}-seed${seed}-`))!);
  const sidecar = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('netb-') && f.endsWith('.npy.ids.tsv') && !f.includes('.logits.'))!);
  const lines = fs.readFileSync(sidecar, 'utf8').split('\n');
  [lines[1], lines[2]] = [lines[2], lines[1]];
  fs.writeFileSync(sidecar, lines.join('\n'));
  await assert.rejects(runFaces({ ...cfg, views: K }), new RegExp(`netb on views in .*: expected row 0 to be ${images[0].replace(/[.]/g, '\\.')}#v0, found ${images[0].replace(/[.]/g, '\\.')}#v1: delete the cached embeddings`));
});
