// Datasets: class folders, flat folders, TSV/CSV manifests (headers, quoting, the images/ root),
// LFW's layout and pairs.txt (a small synthetic copy always; the real one when ../shared has it),
// deterministic order and the errors for inconsistent input.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { folderDataset, imagenetDataset, lfwDataset, lfwImageId, manifestDataset, openDataset, readLfwPairs } from '../src/datasets';
import { FileFormatError } from '../src/io/binary';
import { tempDir } from './helpers/io';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const SHARED_LFW = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'lfw');
const dir = tempDir();

function touch(...parts: string[]): string {
  const file = path.join(dir, ...parts);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'x');
  return file;
}

describe('folders', () => {
  test('class folders: ids are relative paths in code-point order, labels the first folder', () => {
    const ds = folderDataset(path.join(FIXTURES, 'orl'));
    assert.equal(ds.kind, 'folder');
    assert.ok(ds.labelled);
    assert.deepEqual(ds.items.map((i) => [i.id, i.label]), [['s1/1.pgm', 's1'], ['s1/2.pgm', 's1'], ['s2/1.pgm', 's2'], ['s2/2.pgm', 's2']]);
    assert.equal(ds.items[0].path, path.join(FIXTURES, 'orl', 's1', '1.pgm'));
  });

  test('nested folders keep the first as the label; hidden and non-image files are ignored; order is not locale order', () => {
    for (const f of [['B', 'x.jpg'], ['a', 'deep', 'y.PNG'], ['a', 'z.pgm'], ['a', 'notes.txt'], ['a', '.hidden.jpg'], ['.git', 'q.jpg']]) touch('nested', ...f);
    const ds = folderDataset(path.join(dir, 'nested'));
    assert.deepEqual(ds.items.map((i) => [i.id, i.label]), [['B/x.jpg', 'B'], ['a/deep/y.PNG', 'a'], ['a/z.pgm', 'a']]);
  });

  test('a flat folder has no labels; mixed or empty folders are errors', () => {
    touch('flat', 'b.jpg');
    touch('flat', 'a.jpg');
    const flat = folderDataset(path.join(dir, 'flat'));
    assert.ok(!flat.labelled);
    assert.deepEqual(flat.items.map((i) => [i.id, i.label]), [['a.jpg', undefined], ['b.jpg', undefined]]);
    touch('mixed', 'loose.jpg');
    touch('mixed', 'cls', 'in.jpg');
    assert.throws(() => folderDataset(path.join(dir, 'mixed')), /mixed: expected either class folders or a flat folder of images, found both \(e\.g\. 'loose\.jpg' beside 'cls\/in\.jpg'\)/);
    touch('none', 'readme.md');
    assert.throws(() => folderDataset(path.join(dir, 'none')), /none: expected images \(\.jpg .*\) in the folder or its class folders, found none/);
    assert.throws(() => folderDataset(path.join(dir, 'absent')), /dir: expected an existing folder, received '.*absent'/);
  });
});

describe('manifests', () => {
  test('TSV without a header: path and label, relative to the manifest; extra columns ignored', () => {
    touch('m1', 'img', 'a.jpg');
    fs.writeFileSync(path.join(dir, 'm1', 'list.tsv'), 'img/a.jpg\tcat\t0\r\nimg/missing.jpg\tdog\t1\n\n');
    const ds = manifestDataset(path.join(dir, 'm1', 'list.tsv'));
    assert.deepEqual(ds.items, [
      { id: 'img/a.jpg', path: path.join(dir, 'm1', 'img', 'a.jpg'), label: 'cat' },
      { id: 'img/missing.jpg', path: path.join(dir, 'm1', 'img', 'missing.jpg'), label: 'dog' },
    ]);
    assert.ok(ds.labelled);
  });

  test('CSV with a header naming the columns, quoted fields; the images/ folder as root', () => {
    touch('m2', 'images', 'p, q.jpg');
    fs.writeFileSync(path.join(dir, 'm2', 'list.csv'), 'identity,path\n"Smith, J","p, q.jpg"\n"say ""hi""",other.jpg\n');
    const ds = manifestDataset(path.join(dir, 'm2', 'list.csv'));
    assert.deepEqual(ds.items.map((i) => [i.id, i.label, i.path]), [
      ['p, q.jpg', 'Smith, J', path.join(dir, 'm2', 'images', 'p, q.jpg')],
      ['other.jpg', 'say "hi"', path.join(dir, 'm2', 'images', 'other.jpg')],
    ]);
    const rooted = manifestDataset(path.join(dir, 'm2', 'list.csv'), { root: path.join(dir, 'm1') });
    assert.equal(rooted.items[0].path, path.join(dir, 'm1', 'p, q.jpg'));
  });

  test('a header with only a path column: no labels', () => {
    fs.writeFileSync(path.join(dir, 'paths.tsv'), 'path\na.jpg\nb.jpg\n');
    const ds = manifestDataset(path.join(dir, 'paths.tsv'));
    assert.ok(!ds.labelled);
    assert.deepEqual(ds.items.map((i) => i.id), ['a.jpg', 'b.jpg']);
  });

  test('duplicates, missing labels, bad quoting and empty manifests name the file and line', () => {
    const bad = (name: string, text: string, pattern: RegExp) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      assert.throws(() => manifestDataset(file), (err: unknown) => err instanceof FileFormatError && err.path === file && pattern.test(err.message));
    };
    bad('dup.tsv', 'a.jpg\tx\nb.jpg\ty\na.jpg\tz\n', /line 3: expected each image once, 'a\.jpg' is also on line 1/);
    bad('nolabel.tsv', 'a.jpg\tx\nb.jpg\n', /line 2: expected a label in column 2 \(every line has one when the first does\), found none/);
    bad('quote.csv', '"a.jpg,x\n', /line 1: expected a closing quote, found end of line/);
    bad('empty.tsv', '\n\n', /expected one image path per line, found no lines/);
    bad('header-only.csv', 'path,label\n', /expected at least one image after the header, found none/);
    bad('blankpath.tsv', 'a.jpg\tx\n\ty\n', /line 2: expected an image path in column 1, found an empty field/);
    fs.writeFileSync(path.join(dir, 'tab.csv'), 'a.jpg,"x\ty"\n');
    assert.throws(() => manifestDataset(path.join(dir, 'tab.csv')), /tab\.csv: expected labels without tabs or line breaks \(they go to the \.ids\.tsv sidecar\), found string "x\\ty"/);
  });
});

describe('LFW', () => {
  function fakeLfw(): string {
    const root = path.join(dir, 'lfw');
    for (const [name, n] of [['Ann_A', 3], ['Bob_B', 1], ['Cy_C', 2]] as const) {
      for (let i = 1; i <= n; i++) touch('lfw', 'images', name, `${name}_${String(i).padStart(4, '0')}.jpg`);
    }
    fs.writeFileSync(path.join(root, 'pairs.txt'), '2\t1\nAnn_A\t1\t3\nAnn_A\t2\tBob_B\t1\nCy_C\t1\t2\nBob_B\t1\tCy_C\t2\n');
    return root;
  }

  test('pairs.txt folds, matched and mismatched pairs, by image id', () => {
    const root = fakeLfw();
    assert.equal(lfwImageId('Ann_A', 3), 'Ann_A/Ann_A_0003.jpg');
    assert.deepEqual(readLfwPairs(path.join(root, 'pairs.txt')), [
      { fold: 1, same: true, a: 'Ann_A/Ann_A_0001.jpg', b: 'Ann_A/Ann_A_0003.jpg' },
      { fold: 1, same: false, a: 'Ann_A/Ann_A_0002.jpg', b: 'Bob_B/Bob_B_0001.jpg' },
      { fold: 2, same: true, a: 'Cy_C/Cy_C_0001.jpg', b: 'Cy_C/Cy_C_0002.jpg' },
      { fold: 2, same: false, a: 'Bob_B/Bob_B_0001.jpg', b: 'Cy_C/Cy_C_0002.jpg' },
    ]);
  });

  test('all images labelled by person, or only those the pairs use; openDataset detects the layout', () => {
    const root = fakeLfw();
    const all = lfwDataset(root);
    assert.equal(all.items.length, 6);
    assert.deepEqual(all.items.map((i) => i.label), ['Ann_A', 'Ann_A', 'Ann_A', 'Bob_B', 'Cy_C', 'Cy_C']);
    assert.equal(all.pairs!.length, 4);
    const used = openDataset(root, { subset: 'pairs' });
    assert.equal(used.kind, 'lfw');
    assert.deepEqual(used.items.map((i) => i.id), ['Ann_A/Ann_A_0001.jpg', 'Ann_A/Ann_A_0002.jpg', 'Ann_A/Ann_A_0003.jpg', 'Bob_B/Bob_B_0001.jpg', 'Cy_C/Cy_C_0001.jpg', 'Cy_C/Cy_C_0002.jpg']);
    assert.throws(() => openDataset(path.join(FIXTURES, 'orl'), { subset: 'pairs' }), /subset 'pairs': expected an LFW folder with pairs\.txt/);
  });

  test('a pairs.txt with the wrong line count or an image not on disk is named', () => {
    const root = fakeLfw();
    const pairs = path.join(root, 'pairs.txt');
    fs.writeFileSync(pairs, '2\t1\nAnn_A\t1\t3\n');
    assert.throws(() => readLfwPairs(pairs), /pairs\.txt: expected 4 pair lines \(2 folds x 1 matched \+ 1 mismatched\), found 1/);
    fs.writeFileSync(pairs, '1\t1\nAnn_A\t1\t9\nAnn_A\t1\tBob_B\t1\n');
    assert.throws(() => lfwDataset(root), /pairs\.txt: expected every paired image under .*images, 'Ann_A\/Ann_A_0009\.jpg' is not there/);
    fs.writeFileSync(pairs, '1\t1\nAnn_A\t1\nAnn_A\t1\tBob_B\t1\n');
    assert.throws(() => readLfwPairs(pairs), /line 2: expected a matched pair "name i j" \(fold 1\), found 2 fields/);
  });

  test('the real LFW in ../shared: 13,233 images of 5,749 people, 6,000 pairs in 10 folds', (t) => {
    if (!fs.existsSync(path.join(SHARED_LFW, 'pairs.txt'))) return t.skip(`../shared LFW not present at ${SHARED_LFW}`);
    const ds = openDataset(SHARED_LFW);
    assert.equal(ds.kind, 'lfw');
    assert.equal(ds.items.length, 13233);
    assert.equal(new Set(ds.items.map((i) => i.label)).size, 5749);
    assert.equal(ds.pairs!.length, 6000);
    assert.equal(ds.pairs!.filter((p) => p.same).length, 3000);
    assert.deepEqual(ds.pairs![0], { fold: 1, same: true, a: 'Abel_Pacheco/Abel_Pacheco_0001.jpg', b: 'Abel_Pacheco/Abel_Pacheco_0004.jpg' });
    assert.equal(openDataset(SHARED_LFW, { subset: 'pairs' }).items.length, new Set(ds.pairs!.flatMap((p) => [p.a, p.b])).size);
  });
});

test('openDataset: a file is a manifest, a folder a folder dataset; a missing path is named', () => {
  fs.writeFileSync(path.join(dir, 'one.tsv'), 'a.jpg\n');
  assert.equal(openDataset(path.join(dir, 'one.tsv')).kind, 'manifest');
  assert.equal(openDataset(path.join(FIXTURES, 'photos')).kind, 'folder');
  assert.throws(() => openDataset(path.join(dir, 'nothing-here')), /images: expected a folder of images or a manifest \(\.tsv\/\.csv\), '.*nothing-here' does not exist/);
});

test('ImageNet-labelled folders: a class index column, or wnids mapped through imagenet-classes.tsv', () => {
  const root = tempDir();
  const dir = path.join(root, 'val');
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  fs.writeFileSync(path.join(root, 'imagenet-classes.tsv'), '0\tn01440764\ttench\n1\tn01443537\tgoldfish\n');
  fs.writeFileSync(path.join(dir, 'labels.tsv'), 'a.jpg\tn01443537\nb.jpg\tn01440764\n');
  const tiny = imagenetDataset(dir);
  assert.deepEqual(tiny.items.map((i) => [i.id, i.label, i.path]), [['a.jpg', '1', path.join(dir, 'images', 'a.jpg')], ['b.jpg', '0', path.join(dir, 'images', 'b.jpg')]]);
  fs.writeFileSync(path.join(dir, 'labels.tsv'), 'a.jpg\tn01443537\t7\n');
  assert.equal(imagenetDataset(dir).items[0].label, '7');
  fs.writeFileSync(path.join(dir, 'labels.tsv'), 'a.jpg\tn99999999\n');
  assert.throws(() => imagenetDataset(dir), /labels\.tsv: line 1: no class index for 'n99999999'/);
});
