// The face crop choice: it reads only the fitting pool (people in no pair of pairs.txt), never a
// test pair's image, and it finds a window and channel order planted in synthetic embeddings.
// With ../shared's LFW: the catalogue's BGR order for faceres verifies better than RGB there.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { lfwDataset, type Dataset, type ImageItem } from '../src/datasets';
import { identityPairs, scorePairs } from '../src/evaluate/identity-pairs';
import { cosine } from '../src/evaluate/verification';
import { chooseCrops, fittingPool, withWindow, type CandidateEmbedder } from '../src/experiments/face-crops';
import { embedAll, prepareModels, type WorkModel } from '../src/experiments/workspace';
import { alignImages } from '../src/faces/stage';
import { tempDir } from './helpers/io';
import { gaussian, makeRng } from './helpers/random';

const SHARED_LFW = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'lfw');

/** LFW-like: 6 people in the pairs (fold 1 and 2), 8 pool people with 2-4 images, 5 with one. */
function dataset(): Dataset {
  const items: ImageItem[] = [];
  const add = (name: string, n: number) => {
    for (let i = 1; i <= n; i++) items.push({ id: `${name}/${name}_000${i}.jpg`, path: `/aligned/${name}_${i}.png`, label: name });
  };
  for (let k = 0; k < 6; k++) add(`Test_${k}`, 3);
  for (let k = 0; k < 8; k++) add(`Pool_${k}`, 2 + (k % 3));
  for (let k = 0; k < 5; k++) add(`Single_${k}`, 1);
  const t = (k: number, i: number) => `Test_${k}/Test_${k}_000${i}.jpg`;
  const pairs = [0, 1, 2, 3].flatMap((k) => [
    { fold: 1 + (k % 2), a: t(k, 1), b: t(k, 2), same: true },
    { fold: 1 + (k % 2), a: t(k, 3), b: t(k + 2, 1), same: false },
  ]);
  return { kind: 'lfw', source: '/lfw', items, labelled: true, pairs };
}

const model = (id: string): WorkModel => ({
  id,
  card: {
    card: { id, onnx: `${id}.onnx`, input: { name: 'x', size: [112, 112], layout: 'NHWC', channels: 'RGB', scale: 1, mean: [10, 20, 30], std: [1, 2, 3], resize: 'stretch' }, embedding: { tensor: 'e', dim: 16 } },
    onnxPath: `/m/${id}.onnx`, source: `/m/${id}.card.json`, origins: {},
  },
} as WorkModel);

test('crop choice: only fitting-pool images of people with two or more, and the planted window and channel order found', async () => {
  const rng = makeRng('crop choice');
  const ds = dataset();
  const inPairs = new Set(ds.pairs!.flatMap((p) => [p.a, p.b]).map((id) => id.split('/')[0]));
  const centre = new Map<string, number[]>();
  const asked: string[] = [];
  const seen: WorkModel[] = [];
  // Identity signal: strong at net-a's planted window in BGR, weak in BGR elsewhere, none in RGB; net-b: its own window in RGB.
  const planted: Record<string, { crop: number; y: number; channels: string }> = { 'net-a': { crop: 0.58, y: 0.54, channels: 'BGR' }, 'net-b': { crop: 0.42, y: 0.58, channels: 'RGB' } };
  const embed: CandidateEmbedder = async (items, candidates) => {
    asked.push(...items.map((i) => i.id));
    seen.push(...candidates);
    const out = new Map<string, Matrix>();
    for (const c of candidates) {
      const base = c.id.split('@')[0], p = planted[base], inp = c.card.card.input;
      const signal = inp.channels !== p.channels ? 0 : inp.crop === p.crop && inp.cropCentre![1] === p.y ? 3 : 0.6;
      out.set(c.id, Matrix.from(items.map((it) => {
        if (!centre.has(it.label!)) centre.set(it.label!, Array.from({ length: 16 }, () => gaussian(rng)));
        return centre.get(it.label!)!.map((v) => signal * v + gaussian(rng));
      })));
    }
    return out;
  };
  const start = () => ({ crop: 0.5, centre: [0.5, 0.5] as [number, number], channels: 'RGB' as const });
  const choice = await chooseCrops(ds, [model('net-a'), model('net-b')], { dir: '/nowhere', start, embed });
  // Never a test pair's person, never a single-image person; the ids reported are the ids read.
  assert.ok(asked.length > 0);
  for (const id of asked) {
    assert.ok(!inPairs.has(id.split('/')[0]), `read ${id}, a person in pairs.txt`);
    assert.ok(!id.startsWith('Single_'), `read ${id}, a person with one image`);
  }
  assert.deepEqual([...new Set(asked)].sort(), [...choice.ids].sort());
  assert.equal(choice.ids.length, 2 + 3 + 4 + 2 + 3 + 4 + 2 + 3);
  assert.deepEqual(choice.windows['net-a'], { crop: 0.58, centre: [0.5, 0.54], channels: 'BGR' });
  assert.deepEqual(choice.windows['net-b'], { crop: 0.42, centre: [0.5, 0.58], channels: 'RGB' });
  assert.equal(choice.trials['net-a'].filter((t) => t.stage === 1).length, 2);
  // A BGR candidate's mean and std follow the channels.
  const bgr = seen.find((c) => c.card.card.input.channels === 'BGR')!;
  assert.deepEqual([bgr.card.card.input.mean, bgr.card.card.input.std], [[30, 20, 10], [3, 2, 1]]);
});

test('crop choice: the pool is the people in no pair; a pool without a person of two images is an error naming the dataset', async () => {
  const ds = dataset();
  assert.deepEqual(new Set(fittingPool(ds).map((i) => i.label!.split('_')[0])), new Set(['Pool', 'Single']));
  const noPairs = { ...ds, items: ds.items.filter((i) => !i.label!.startsWith('Pool_')) };
  await assert.rejects(chooseCrops(noPairs, [model('net-a')], { dir: '/nowhere', start: () => ({ crop: 0.5, centre: [0.5, 0.5], channels: 'RGB' }), embed: async () => new Map() }),
    /dataset: expected people in no pair of pairs.txt with two or more images/);
  assert.equal(withWindow(model('m'), { crop: 0.6 }).id, 'm@0.6,0.5,0.5,RGB');
});

test("faceres's catalogue card (BGR) verifies better than RGB on LFW's fitting pool", async (t) => {
  if (!fs.existsSync(path.join(SHARED_LFW, 'pairs.txt'))) return t.skip(`../shared LFW not present at ${SHARED_LFW}`);
  const work = tempDir();
  const pool = fittingPool(lfwDataset(SHARED_LFW));
  const count = new Map<string, number>();
  for (const it of pool) count.set(it.label!, (count.get(it.label!) ?? 0) + 1);
  const items = pool.filter((it) => count.get(it.label!)! > 1);
  const { images } = await alignImages(items.map((i) => i.path), { cache: path.join(work, 'align'), fallback: 'centre' });
  const [faceres] = await prepareModels(['faceres'], path.join(work, 'models'));
  assert.equal(faceres.card.card.input.channels, 'BGR');
  const candidates = (['BGR', 'RGB'] as const).map((channels) => withWindow(faceres, { crop: 0.5, channels }));
  const ds: Dataset = { kind: 'lfw', source: SHARED_LFW, labelled: true, items: items.map((it, i) => ({ ...it, path: images[i].crop! })) };
  const embedded = await embedAll(ds, candidates, path.join(work, 'embeddings'));
  const pairs = identityPairs(items.map((_, i) => i), items.map((it) => it.label!));
  const [bgr, rgb] = candidates.map((c) => {
    const E = embedded.get(c.id)!.embeddings.matrix;
    return scorePairs(pairs.map((p) => ({ score: cosine(E.row(p.a), E.row(p.b)), same: p.same })));
  });
  console.log(`# faceres on ${items.length} pool faces: BGR ${(100 * bgr.accuracy).toFixed(2)}% (AUC ${bgr.auc.toFixed(4)}), RGB ${(100 * rgb.accuracy).toFixed(2)}% (AUC ${rgb.auc.toFixed(4)})`);
  assert.ok(bgr.accuracy > rgb.accuracy + 0.01 && bgr.auc > rgb.auc, `BGR ${bgr.accuracy} / ${bgr.auc} against RGB ${rgb.accuracy} / ${rgb.auc}`);
});
