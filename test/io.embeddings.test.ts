import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import {
  assertFiniteRows,
  loadEmbeddings,
  pairById,
  readSafetensors,
  saveEmbeddings,
  sidecarPath,
  writeNpy,
} from '../src/io';
import { makeRng, randn } from './helpers/random';
import { assertFormatError, hex, tempDir, tempFiles } from './helpers/io';

const dir = tempDir();
const rng = makeRng('io.embeddings');
let counter = 0;
const file = (ext: string) => path.join(dir, `set-${counter++}${ext}`);

test('sidecarPath appends .ids.tsv to the whole file name', () => {
  assert.equal(sidecarPath('/data/resnet.npy'), '/data/resnet.npy.ids.tsv');
  assert.equal(sidecarPath('vgg.v2.safetensors'), 'vgg.v2.safetensors.ids.tsv');
});

test('X.npy and X.safetensors keep their own sidecars: writing one never changes the ids of the other', () => {
  const stem = path.join(dir, `pair-${counter++}`);
  const a = { matrix: randn(rng, 4, 3, 'float32'), ids: ['a', 'b', 'c', 'd'] };
  saveEmbeddings(`${stem}.npy`, a);
  saveEmbeddings(`${stem}.safetensors`, { matrix: randn(rng, 4, 3, 'float32'), ids: ['w', 'x', 'y', 'z'] });
  assert.deepEqual(loadEmbeddings(`${stem}.npy`).ids, a.ids);
  assert.deepEqual(loadEmbeddings(`${stem}.safetensors`).ids, ['w', 'x', 'y', 'z']);
});

test('an old-style X.ids.tsv sidecar is still read, unless another X.* file could own it', () => {
  const stem = path.join(dir, `legacy-${counter++}`);
  const set = { matrix: randn(rng, 3, 2, 'float32'), ids: ['p', 'q', 'r'] };
  saveEmbeddings(`${stem}.npy`, set);
  fs.renameSync(`${stem}.npy.ids.tsv`, `${stem}.ids.tsv`);
  assert.deepEqual(loadEmbeddings(`${stem}.npy`).ids, set.ids);
  saveEmbeddings(`${stem}.safetensors`, set);
  assert.throws(() => loadEmbeddings(`${stem}.npy`), (err: Error) => err.message.startsWith(`${stem}.ids.tsv: `) && /shared by .*legacy-\d+\.npy and .*\.safetensors/.test(err.message));
  // The file written now has its own sidecar, which wins.
  assert.deepEqual(loadEmbeddings(`${stem}.safetensors`).ids, set.ids);
});

test('a folder where a file is expected is an error naming the path', () => {
  const f = path.join(dir, `folder-${counter++}.npy`);
  fs.mkdirSync(f);
  assert.throws(() => loadEmbeddings(f), (err: Error) => err.message === `${f}: expected a file, found a folder`);
  fs.mkdirSync(`${f}.ids.tsv`);
  assert.throws(() => loadEmbeddings(f), (err: Error) => err.message === `${f}.ids.tsv: cannot read the ids sidecar: EISDIR`);
});

test('round trips a set with labels through .npy and the id/label sidecar', () => {
  const set = { matrix: randn(rng, 3, 4, 'float32'), ids: ['cat_1', 'dog 2', 'émeu'], labels: ['cat', '', 'bird'] };
  const f = file('.npy');
  saveEmbeddings(f, set);
  assert.equal(fs.readFileSync(sidecarPath(f), 'utf8'), 'id\tlabel\ncat_1\tcat\ndog 2\t\némeu\tbird\n');
  const back = loadEmbeddings(f);
  assert.deepEqual(back.ids, set.ids);
  assert.deepEqual(back.labels, set.labels);
  assert.equal(back.idsFromSidecar, true);
  assert.deepEqual(back.matrix.shape, [3, 4]);
  assert.equal(hex(back.matrix.data), hex(set.matrix.data));
  assert.deepEqual(tempFiles(dir), []);
});

test('round trips a float64 set without labels through .safetensors (tensor "embeddings")', () => {
  const set = { matrix: randn(rng, 5, 2, 'float64'), ids: ['e', 'd', 'c', 'b', 'a'] };
  const f = file('.safetensors');
  saveEmbeddings(f, set);
  assert.equal(fs.readFileSync(sidecarPath(f), 'utf8'), 'id\ne\nd\nc\nb\na\n');
  assert.deepEqual([...readSafetensors(f).tensors.keys()], ['embeddings']);
  const back = loadEmbeddings(f);
  assert.deepEqual(back.ids, set.ids);
  assert.equal(back.labels, undefined);
  assert.equal(back.matrix.dtype, 'float64');
  assert.equal(hex(back.matrix.data), hex(set.matrix.data));
});

test('round trips an empty set', () => {
  const f = file('.npy');
  saveEmbeddings(f, { matrix: Matrix.zeros(0, 8), ids: [] });
  const back = loadEmbeddings(f);
  assert.deepEqual([back.matrix.shape, back.ids, back.idsFromSidecar], [[0, 8], [], true]);
});

test('without a sidecar the ids are the row numbers, and that is recorded', () => {
  const f = file('.npy');
  writeNpy(f, randn(rng, 3, 2, 'float32'));
  const back = loadEmbeddings(f);
  assert.deepEqual(back.ids, ['0', '1', '2']);
  assert.equal(back.idsFromSidecar, false);
});

test('accepts CRLF sidecars', () => {
  const f = file('.npy');
  writeNpy(f, randn(rng, 2, 2, 'float32'));
  fs.writeFileSync(sidecarPath(f), 'id\tlabel\r\na\tx\r\nb\ty\r\n');
  const back = loadEmbeddings(f);
  assert.deepEqual([back.ids, back.labels], [['a', 'b'], ['x', 'y']]);
});

test('rejects sidecars that do not match the matrix or are malformed, naming the file and line', () => {
  const cases: [string, RegExp][] = [
    ['id\na\nb\n', /expected 3 id rows \(the rows of .*set-\d+\.npy\), found 2/],
    ['id\na\nb\nc\nd\n', /expected 3 id rows .*found 4/],
    ['name\na\nb\nc\n', /line 1: expected the header "id\\tlabel" or "id", found string "name"/],
    ['', /line 1: expected the header .*found string ""/],
    ['id\na\nb\na\n', /line 4: expected a unique id \(line 2 is the same\), found string "a"/],
    ['id\na\n\nc\n', /line 3: expected a non-empty id without tab or newline, found string ""/],
    ['id\ta\nb\n', /line 1: expected the header/],
    ['id\tlabel\na\tx\nb\nc\tz\n', /line 3: expected 2 tab-separated field\(s\), found 1/],
    ['id\na\tx\nb\nc\n', /line 2: expected 1 tab-separated field\(s\), found 2/],
  ];
  for (const [text, pattern] of cases) {
    const f = file('.npy');
    writeNpy(f, randn(rng, 3, 2, 'float32'));
    fs.writeFileSync(sidecarPath(f), text);
    assertFormatError(() => loadEmbeddings(f), sidecarPath(f), pattern);
  }
});

test('a .safetensors file without the "embeddings" tensor is refused', () => {
  const f = file('.safetensors');
  saveEmbeddings(f, { matrix: randn(rng, 1, 1, 'float32'), ids: ['x'] });
  fs.rmSync(sidecarPath(f));
  // Rewrite under another tensor name.
  fs.writeFileSync(f, fs.readFileSync(f, 'latin1').replace('"embeddings"', '"embedding_"'), 'latin1');
  assert.throws(() => loadEmbeddings(f), /expected a tensor named "embeddings", found only "embedding_"/);
});

test('saveEmbeddings validates the set and the extension, writing nothing on error', () => {
  const m = randn(rng, 3, 2, 'float32');
  const cases: [unknown, RegExp, ErrorConstructor][] = [
    [{ matrix: m, ids: ['a', 'b'] }, /set\.ids: expected 3 ids \(one per matrix row\), received Array\(2\)/, RangeError],
    [{ matrix: m, ids: ['a', '', 'c'] }, /set\.ids\[1\]: expected a non-empty id without tab or newline, received string ""/, RangeError],
    [{ matrix: m, ids: ['a', 'b\tc', 'd'] }, /set\.ids\[1\]: expected a non-empty id/, RangeError],
    [{ matrix: m, ids: ['a', 'b', 'c\n'] }, /set\.ids\[2\]: expected a non-empty id/, RangeError],
    [{ matrix: m, ids: ['a', 'b', 'a'] }, /set\.ids\[2\]: expected a unique id \(ids\[0\] is the same\), received string "a"/, RangeError],
    [{ matrix: m, ids: ['a', 7, 'c'] }, /set\.ids\[1\]: expected a non-empty id .*received number 7/, TypeError],
    [{ matrix: m, ids: ['a', 'b', 'c'], labels: ['x', 'y'] }, /set\.labels: expected 3 labels/, RangeError],
    [{ matrix: m, ids: ['a', 'b', 'c'], labels: ['x', 'y\tz', ''] }, /set\.labels\[1\]: expected a string without tab or newline/, TypeError],
    [{ matrix: [[1]], ids: ['a'] }, /set\.matrix: expected a Matrix/, TypeError],
    [null, /set: expected an EmbeddingSet/, TypeError],
  ];
  const before = fs.readdirSync(dir).length;
  for (const [set, pattern, ctor] of cases) {
    assert.throws(() => saveEmbeddings(file('.npy'), set as never), (err: unknown) => {
      assert.ok(err instanceof ctor, String(err));
      assert.match((err as Error).message, pattern);
      return true;
    });
  }
  assert.throws(() => saveEmbeddings(file('.csv'), { matrix: m, ids: ['a', 'b', 'c'] }), /path: expected a file name ending in \.npy or \.safetensors, received string ".*\.csv"/);
  assert.throws(() => loadEmbeddings(file('.pt')), RangeError);
  assert.equal(fs.readdirSync(dir).length, before);
});

test('pairById reorders b to a\'s ids without copying what is already aligned', () => {
  const a = { matrix: randn(rng, 3, 4, 'float32'), ids: ['x', 'y', 'z'] };
  const b = { matrix: Matrix.from([[30, 31], [10, 11], [20, 21]], 'float64'), ids: ['z', 'x', 'y'] };
  const p = pairById(a, b);
  assert.equal(p.source, a.matrix);
  assert.deepEqual(p.ids, ['x', 'y', 'z']);
  assert.equal(p.target.dtype, 'float64');
  assert.deepEqual(p.target.toArray(), [[10, 11], [20, 21], [30, 31]]);
  assert.deepEqual([p.droppedSource, p.droppedTarget], [0, 0]);
  const same = pairById(a, { matrix: p.target, ids: ['x', 'y', 'z'] });
  assert.equal(same.target, p.target);
});

test('pairById reports ids present in one set only, or keeps the intersection with allowPartial', () => {
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const a = { matrix: Matrix.from([...ids('a', 7), 's0', 's1'].map((_, i) => [i])), ids: [...ids('a', 7), 's0', 's1'] };
  const b = { matrix: Matrix.from([[100], [101], [102]]), ids: ['s1', 'b0', 's0'] };
  assert.throws(
    () => pairById(a, b),
    /pairById: expected a and b to have the same ids, found 7 id\(s\) of a missing from b \("a0", "a1", "a2", "a3", "a4", \.\.\.\) and 1 id\(s\) of b missing from a \("b0"\); only 2 id\(s\) are shared: give both sets the same rows \(library: pairById's allowPartial option keeps the shared ones\)/,
  );
  const p = pairById(a, b, { allowPartial: true });
  assert.deepEqual(p.ids, ['s0', 's1']);
  assert.deepEqual(p.source.toArray(), [[7], [8]]);
  assert.deepEqual(p.target.toArray(), [[102], [100]]);
  assert.deepEqual([p.droppedSource, p.droppedTarget], [7, 1]);

  const disjoint = { matrix: Matrix.from([[1]]), ids: ['q'] };
  assert.throws(() => pairById(a, disjoint, { allowPartial: true }), /; a and b share no ids/);
  assert.throws(() => pairById(a, b, { allowPartial: 'yes' as never }), /options\.allowPartial: expected a boolean/);
  assert.throws(() => pairById(a, { matrix: Matrix.from([[1], [2]]), ids: ['s0', 's0'] }), /b\.ids\[1\]: expected a unique id/);
});

test('assertFiniteRows names the offending row by id', () => {
  const set = { matrix: Matrix.from([[1, 2], [3, 4], [5, NaN]]), ids: ['p', 'q', 'r'] };
  assert.throws(() => assertFiniteRows('resnet.npy', set), /resnet\.npy: expected finite values, received NaN at row 2 \(id "r"\), column 1/);
  set.matrix.set(0, 1, -Infinity);
  assert.throws(() => assertFiniteRows('x', set), /received -Infinity at row 0 \(id "p"\), column 1/);
  assertFiniteRows('ok', { matrix: Matrix.from([[1]]), ids: ['z'] });
});
