// `embmap import` end to end: the catalogue listing, imports by id and by file with overrides,
// usage errors, and the classifier heads feeding `embmap fit --method weights`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CATALOGUE, catalogueEntry, locate } from '../src/importers';
import { LinearMap } from '../src/maps/linear-map';
import { loadCard } from '../src/models';
import { tempDir } from './helpers/io';

const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'import', ...args], { encoding: 'utf8' });
const dir = tempDir();

test('--list shows every catalogue id and where its file is', () => {
  const r = run('--list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { id: string; kind: string; file: string }[];
  assert.deepEqual(rows.map((x) => x.id), CATALOGUE.map((e) => e.id));
  const faceres = rows.find((x) => x.id === 'faceres')!;
  assert.match(faceres.file, /@vladmandic[/\\]human-models[/\\]models[/\\]faceres\.json$/);
  assert.equal(rows.some((x) => x.id === 'mobilefacenet'), false);
});

test('a catalogue id needs no card: the written card is complete and valid', () => {
  const out = path.join(dir, 'byid');
  const r = run('mobileface', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { cardPath: string; onnxPath: string; preprocessingFrom: string };
  assert.equal(res.cardPath, path.join(out, 'mobileface.card.json'));
  assert.ok(fs.existsSync(res.onnxPath));
  assert.match(res.preprocessingFrom, /catalogue/);
  const { card, onnxPath } = loadCard(res.cardPath);
  assert.equal(onnxPath, path.resolve(res.onnxPath));
  assert.deepEqual(card.input.size, [112, 112]);
  assert.deepEqual(card.embedding, { tensor: 'embedding', dim: 256 });
  assert.match(card.source!, /batchnorm0\/add_1/);
  // No temp files left behind by the atomic writes.
  assert.deepEqual(fs.readdirSync(out).sort(), ['mobileface.card.json', 'mobileface.onnx']);
});

test('a file with flags: kind, id, embedding node and preprocessing overrides', () => {
  const file = locate(catalogueEntry('faceres')!).file;
  const copy = path.join(dir, 'src', 'model.json');
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(file, copy);
  fs.copyFileSync(path.join(path.dirname(file), 'faceres.bin'), path.join(dir, 'src', 'faceres.bin'));
  const out = path.join(dir, 'byfile');
  const r = run('tfjs', copy, '--out', out, '--id', 'my-faceres', '--embedding', 'global_pooling/Mean', '--scale', '0.00392156862745098', '--mean', '0.5', '--std', '0.5,0.5,0.5', '--resize', 'pad');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /imported my-faceres/);
  assert.match(r.stdout, /defaults with .*scale.*overridden/);
  const { card } = loadCard(path.join(out, 'my-faceres.card.json'));
  assert.deepEqual([card.input.scale, card.input.mean, card.input.std, card.input.resize], [1 / 255, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 'pad']);
  assert.equal(card.embedding.dim, 1024);
});

test('usage errors name the flag or argument; nothing is written', () => {
  const out = path.join(dir, 'errors');
  const cases: [string[], number, RegExp][] = [
    [['no-such-model', '--out', out], 1, /source: expected a catalogue id .* received 'no-such-model'/],
    [['faceres'], 2, /--out: expected an output directory/],
    [['tflite', 'faceres', '--out', out], 1, /kind: faceres is a tfjs model, received 'tflite'/],
    [['faceres', '--out', out, '--resize', 'zoom'], 2, /--resize: expected one of crop, stretch, pad, received 'zoom'/],
    [['faceres', '--out', out, '--std', '1,0,1'], 2, /--std: expected positive numbers/],
    [['faceres', '--out', out, '--from', path.join(dir, 'nowhere')], 1, /--from: expected faceres's file faceres\.json/],
    [['faceres', '--out', out, '--id', '../escape'], 1, /id: expected letters, digits/],
  ];
  for (const [args, status, pattern] of cases) {
    const r = run(...args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  assert.equal(fs.existsSync(out), false);
});

test('--from takes a folder holding a catalogue model', () => {
  const folder = path.dirname(locate(catalogueEntry('faceapi-resnet')!).file);
  const r = run('faceapi-resnet', '--from', folder, '--out', path.join(dir, 'from'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /embedding: embedding \(128-d\)/);
});

test('imported heads feed embmap fit --method weights (no images)', (t) => {
  const ids = ['mobilenet-v1-0.25-128', 'mobilenet-v2-1.0-224'];
  try {
    ids.forEach((id) => locate(catalogueEntry(id)!));
  } catch (err) {
    return t.skip(`Coral models not available: ${(err as Error).message}`);
  }
  const out = path.join(dir, 'heads');
  for (const id of ids) assert.equal(run(id, '--out', out).status, 0);
  const map = path.join(out, 'v1-to-v2.safetensors');
  const r = spawnSync(process.execPath, [cli, 'fit', '--method', 'weights', '--source', path.join(out, `${ids[0]}.head.safetensors`), '--target', path.join(out, `${ids[1]}.head.safetensors`), '--out', map], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = LinearMap.load(map);
  assert.deepEqual([m.p, m.q], [256, 1280]);
});
