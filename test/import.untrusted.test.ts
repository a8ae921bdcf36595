// A downloaded model package may only make embmap read files inside its own folder: every shard
// path of a weights manifest must resolve there, after symlinks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { convertFaceapi } from '../src/importers';
import { readWeights } from '../src/importers/tfjs-weights';
import { FileFormatError } from '../src/io/binary';
import { tempDir } from './helpers/io';

const root = tempDir();
const pkg = path.join(root, 'pkg');
fs.mkdirSync(path.join(pkg, 'sub'), { recursive: true });
const values = Float32Array.of(1.5, -2, 3.25);
const bytes = Buffer.from(values.buffer);
fs.writeFileSync(path.join(pkg, 'sub', 'w.bin'), bytes);
fs.writeFileSync(path.join(root, 'secret.bin'), bytes);
fs.symlinkSync(path.join(root, 'secret.bin'), path.join(pkg, 'link.bin'));
fs.symlinkSync(root, path.join(pkg, 'up'));
const manifest = path.join(pkg, 'model.json');
const groups = (shard: string) => [{ paths: [shard], weights: [{ name: 'w', shape: [3], dtype: 'float32' }] }];

test('shard paths inside the manifest folder are read', () => {
  assert.deepEqual([...readWeights(manifest, groups('sub/w.bin'), pkg).get('w')!.data], [...values]);
  assert.deepEqual([...readWeights(manifest, groups('./sub/../sub/w.bin'), pkg).get('w')!.data], [...values]);
});

test('../, absolute and symlinked shard paths leading outside the folder are refused, naming the path', () => {
  for (const shard of ['../secret.bin', path.join(root, 'secret.bin'), 'link.bin', 'up/secret.bin', '../../../../../../etc/passwd', '.', '']) {
    assert.throws(
      () => readWeights(manifest, groups(shard), pkg),
      (err: unknown) => err instanceof FileFormatError && err.path === manifest && err.message.includes(`expected shard paths inside the manifest's folder ${pkg}, received ${JSON.stringify(shard)}`),
      shard,
    );
  }
});

test('a face-api manifest naming /etc/passwd is refused before anything is read', () => {
  const file = path.join(pkg, 'face_recognition_model-weights_manifest.json');
  fs.writeFileSync(file, JSON.stringify(groups('/etc/passwd')));
  assert.throws(() => convertFaceapi(file), (err: unknown) => err instanceof FileFormatError && /received "\/etc\/passwd", which leads to \/etc\/passwd/.test(err.message));
});

test('a model card may name a model elsewhere (it is the user\'s configuration): inspect says where it leads', () => {
  fs.writeFileSync(path.join(root, 'm.onnx'), '');
  const card = path.join(pkg, 'card.json');
  const input = { name: 'in', size: [8, 8], layout: 'NHWC', channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'crop' };
  fs.writeFileSync(card, JSON.stringify({ id: 'x', onnx: '../m.onnx', input, embedding: { tensor: 'e', dim: 4 } }));
  const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'inspect', card], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`onnx: ${path.join(root, 'm.onnx')} \\(outside the card's folder\\)`));
});
