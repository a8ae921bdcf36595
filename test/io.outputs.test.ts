// The rule for outputs: never an input of the same command (by real path), the expected
// extension, an existing folder; stale temp files and checkpoint folders only removed when embmap's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Checkpoint } from '../src/extract/checkpoint';
import { writeFileAtomic } from '../src/io/atomic';
import { saveEmbeddings } from '../src/io/embeddings';
import { makeRng, randn } from './helpers/random';
import { deadPid, tempDir } from './helpers/io';

const rng = makeRng('io.outputs');
const dir = tempDir();
const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: dir });
const f = (name: string) => path.join(dir, name);
const ids = Array.from({ length: 60 }, (_, i) => `r${i}`);
saveEmbeddings(f('a.npy'), { matrix: randn(rng, 60, 5, 'float32'), ids });
saveEmbeddings(f('b.npy'), { matrix: randn(rng, 60, 4, 'float32'), ids });
fs.symlinkSync(f('b.npy'), f('link-to-b.npy'));
const bytes = (name: string) => fs.readFileSync(f(name));

/** A pid that no process has: a child that has exited. */
test('fit and apply refuse an --out that is one of their inputs, also through a symlink, and leave it intact', () => {
  const before = bytes('b.npy');
  for (const out of ['a.npy', 'link-to-b.npy', './b.npy']) {
    const r = run('fit', '--source', 'a.npy', '--target', 'b.npy', '--out', out);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /--out: expected a file name ending in \.safetensors/);
  }
  assert.equal(run('fit', '--source', 'a.npy', '--target', 'b.npy', '--out', 'm.safetensors').status, 0);
  const w = run('fit', '--method', 'weights', '--source', 'm.safetensors', '--target', 'm.safetensors', '--out', 'm.safetensors');
  assert.match(w.stderr, /--out: expected a file that is not the input --source m\.safetensors, received "m\.safetensors"; writing it would overwrite that input/);
  const map = bytes('m.safetensors');
  fs.symlinkSync(f('m.safetensors'), f('link-to-m.safetensors'));
  for (const [out, input] of [['m.safetensors', '--map'], ['link-to-m.safetensors', '--map'], ['a.npy', '--input']]) {
    const r = run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', out);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`--out: expected a file that is not the input ${input} `));
  }
  // The files a parameter names are inputs too: a prior map, a classifier head.
  for (const [flag, value] of [['--prior', 'link-to-m.safetensors'], ['--target-head', 'm.safetensors']]) {
    const r = run('fit', '--source', 'a.npy', '--target', 'b.npy', '--method', 'ridge', flag, value, '--out', 'm.safetensors');
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`--out: expected a file that is not the input ${flag} ${value.replace('.', '\\.')}, received "m\\.safetensors"`));
  }
  assert.ok(bytes('b.npy').equals(before) && bytes('m.safetensors').equals(map));
  assert.match(run('fit', '--source', 'a.npy', '--target', 'b.npy', '--out', 'f.txt').stderr, /--out: expected a file name ending in \.safetensors, received "f\.txt"/);
  assert.match(run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', 'o.txt').stderr, /--out: expected a file name ending in \.npy or \.safetensors, received "o\.txt"/);
});

test('a missing output folder or an output that is a folder is named as such', () => {
  const r = run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', 'nowhere/o.npy');
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `embmap apply: --out: expected an existing folder to write "nowhere/o.npy" into, ${f('nowhere')} does not exist or is not a folder\n`);
  fs.mkdirSync(f('dir.npy'));
  assert.match(run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', 'dir.npy').stderr, /--out: expected a file name, received "dir\.npy", which is a folder/);
});

test('outputs of different extensions never share an ids sidecar', () => {
  assert.equal(run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', 'o.npy').status, 0);
  const sidecar = bytes('o.npy.ids.tsv');
  assert.equal(run('apply', '--map', 'm.safetensors', '--input', 'a.npy', '--out', 'o.safetensors').status, 0);
  assert.ok(bytes('o.npy.ids.tsv').equals(sidecar));
  assert.ok(fs.existsSync(f('o.safetensors.ids.tsv')));
});

test('temp files of a killed writer are removed by the next write of that file; other files are not', () => {
  const dead = deadPid();
  const stale = `.t.npy.${dead}.0123456789ab.tmp`;
  const live = `.t.npy.${process.pid}.0123456789ab.tmp`;
  const other = ['.t.npy.notapid.0123456789ab.tmp', `.u.npy.${dead}.0123456789ab.tmp`, `.t.npy.${dead}.xyz.tmp`];
  for (const name of [stale, live, ...other]) fs.writeFileSync(f(name), 'x');
  writeFileAtomic(f('t.npy'), [Buffer.from('data')]);
  assert.ok(!fs.existsSync(f(stale)), 'the dead writer\'s temp file is removed');
  for (const name of [live, ...other]) assert.ok(fs.existsSync(f(name)), `${name} is kept`);
});

test('a .partial folder embmap did not make is refused, never taken over or deleted', () => {
  const fp = { outputs: ['m'], dataset: 'd' };
  const foreign = f('x.npy.partial');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'precious.txt'), 'mine');
  fs.writeFileSync(path.join(foreign, 'progress.json'), '{}');
  for (const restart of [false, true]) {
    assert.throws(() => Checkpoint.open(foreign, fp, [4], 10, { restart }), /x\.npy\.partial: expected an extraction checkpoint folder made by embmap \(with its \.embmap-checkpoint marker\), found a folder holding other files \(precious\.txt\)/);
  }
  assert.equal(fs.readFileSync(path.join(foreign, 'precious.txt'), 'utf8'), 'mine');
  assert.equal(fs.readFileSync(path.join(foreign, 'progress.json'), 'utf8'), '{}');

  const target = f('elsewhere');
  fs.mkdirSync(target);
  fs.symlinkSync(target, f('y.npy.partial'));
  assert.throws(() => Checkpoint.open(f('y.npy.partial'), fp, [4], 10), /found a symbolic link/);
  assert.deepEqual(fs.readdirSync(target), []);
});

test('a checkpoint folder embmap made is marked, resumed and removed; an unmarked one from an earlier version is adopted', async () => {
  const fp = { outputs: ['m'], dataset: 'd' };
  const dirA = f('z.npy.partial');
  const cp = Checkpoint.open(dirA, fp, [2], 4);
  assert.ok(fs.existsSync(path.join(dirA, '.embmap-checkpoint')));
  cp.append(2, 2, [Float32Array.of(1, 2, 3, 4)], []);
  await cp.close();
  fs.rmSync(path.join(dirA, '.embmap-checkpoint'));
  assert.equal(Checkpoint.recordedDone(dirA), 2, 'the pipeline starts decoding where the old record says');
  const again = Checkpoint.open(dirA, fp, [2], 4);
  assert.equal(again.progress.done, 2);
  assert.ok(fs.existsSync(path.join(dirA, '.embmap-checkpoint')));
  await again.remove();
  assert.ok(!fs.existsSync(dirA));
});

test('import refuses to write its ONNX file over the model it reads', () => {
  const tflite = path.join(__dirname, '..', '..', 'demo', 'models', 'mobilenet_v1_0.25_128_quant.tflite');
  fs.copyFileSync(tflite, f('x.onnx'));
  const before = bytes('x.onnx');
  const r = run('import', 'tflite', 'x.onnx', '--out', '.', '--id', 'x');
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /out: expected a file that is not the input source x\.onnx, received ".*x\.onnx"; writing it would overwrite that input/);
  assert.ok(bytes('x.onnx').equals(before));
});
