// The extraction pass end to end: two models with different preprocessing in one pass (rows equal
// to single-image runs), unreadable images skipped with their reasons (or --strict), the CLI killed
// with SIGKILL twice and resumed without recomputing finished batches (output identical to an
// uninterrupted run), a foreign checkpoint refused, and the progress display.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { manifestDataset } from '../src/datasets';
import { makeRng as seeded } from '../src/evaluate/split';
import type { ProgressRecord } from '../src/extract/checkpoint';
import { extract } from '../src/extract/pipeline';
import { Progress } from '../src/extract/progress';
import { ModelRunner } from '../src/extract/runner';
import { imageToTensor } from '../src/images/preprocess';
import { loadEmbeddings } from '../src/io/embeddings';
import type { ModelCard } from '../src/models/card';
import { loadCard } from '../src/models/load';
import { convNet } from './helpers/cnn';
import { writeModel } from '../src/onnx/proto';
import { tempDir, tempFiles } from './helpers/io';
import { makeRng } from './helpers/random';
import { relErr } from './helpers/reference';

const rng = makeRng('extract.pipeline.test');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = tempDir();
const FIXTURE_IDS = ['orl/s1/1.pgm', 'orl/s1/2.pgm', 'orl/s2/1.pgm', 'orl/s2/2.pgm', 'photos/tiny-val_0.jpg', 'photos/tiny-val_1.jpg', 'photos/tiny-val_2-rgba.png', 'photos/lfw-Aaron_Eckhart_0001.jpg', 'photos/imagenet-n01443537.jpg'];

/** Writes model + card; returns the card path. */
function writeCard(name: string, input: Omit<ModelCard['input'], 'name'>, head: 'gemm' | 'matmul', classes: number): string {
  const net = convNet({
    input: { size: input.size, layout: input.layout },
    layers: [{ op: 'conv', out: 8, kernel: 3, stride: 2 }, { op: 'residual', layers: [{ op: 'conv', out: 8, kernel: 3 }] }, { op: 'gap' }],
    head: { classes, op: head },
    rng: seeded((rng() * 2 ** 32) >>> 0),
  });
  writeModel(path.join(dir, `${name}.onnx`), net.model);
  const card: ModelCard = {
    id: name, onnx: `${name}.onnx`, input: { name: 'input', ...input },
    embedding: { tensor: 'embedding', dim: 8 }, logits: { tensor: 'logits', classes },
  };
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(card));
  return file;
}

const cardA = writeCard('a', { size: [32, 32], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'crop' }, 'gemm', 5);
const cardB = writeCard('b', { size: [40, 48], layout: 'NHWC', channels: 'BGR', scale: 1, mean: [104, 117, 123], std: [58, 57, 57], resize: 'pad' }, 'matmul', 3);

function manifest(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Each image alone through the model: the reference rows. */
async function singleImageRows(cardFile: string, files: string[]) {
  const runner = await ModelRunner.open(loadCard(cardFile), { logits: true });
  try {
    const rows = [];
    for (const f of files) rows.push(await runner.run(await imageToTensor(f, runner.spec), 1));
    return rows;
  } finally {
    await runner.close();
  }
}

function assertRowsMatch(file: string, reference: Float32Array[], what: string) {
  const set = loadEmbeddings(file);
  assert.equal(set.matrix.rows, reference.length, what);
  reference.forEach((row, i) => assert.ok(relErr(set.matrix.row(i), row) < 1e-5, `${what} row ${i}`));
}

describe('one pass, several models', () => {
  test('two models with different layouts, sizes and normalisation: rows equal single-image runs; ids and labels recorded', async () => {
    const list = manifest('fixtures.tsv', FIXTURE_IDS.map((id) => `${id}\t${id.split('/')[1]}`));
    const dataset = manifestDataset(list, { root: FIXTURES });
    const out = (n: string) => path.join(dir, 'pass', n);
    fs.mkdirSync(out(''), { recursive: true });
    const summary = await extract({
      dataset,
      targets: [{ model: cardA, out: out('a.npy'), logits: out('a.logits.npy') }, { model: cardB, out: out('b.safetensors'), logits: out('b.logits.npy') }],
      batch: 4, workers: 2, prefetch: 1,
    });
    assert.deepEqual([summary.total, summary.rows, summary.skipped.length, summary.resumedFrom, summary.computed, summary.batches], [9, 9, 0, 0, 9, 3]);
    assert.deepEqual(summary.models.map((m) => [m.id, m.provider, m.dim, m.classes]), [['a', 'cpu', 8, 5], ['b', 'cpu', 8, 3]]);
    const files = dataset.items.map((i) => i.path);
    for (const [card, emb, logits] of [[cardA, 'a.npy', 'a.logits.npy'], [cardB, 'b.safetensors', 'b.logits.npy']]) {
      const ref = await singleImageRows(card, files);
      assertRowsMatch(out(emb), ref.map((r) => r.embeddings), emb);
      assertRowsMatch(out(logits), ref.map((r) => r.logits!), logits);
      const set = loadEmbeddings(out(emb));
      assert.deepEqual(set.ids, FIXTURE_IDS);
      assert.deepEqual(set.labels, FIXTURE_IDS.map((id) => id.split('/')[1]));
    }
    assert.ok(!fs.existsSync(out('a.npy.partial')), 'checkpoint removed after the final outputs');
    assert.deepEqual(tempFiles(out('')), []);
  });

  test('a card that does not match its model fails before any image is read or any file written', async () => {
    const card = JSON.parse(fs.readFileSync(cardA, 'utf8'));
    card.input.size = [64, 64];
    fs.writeFileSync(path.join(dir, 'wrong.json'), JSON.stringify(card));
    const out = path.join(dir, 'wrong.npy');
    await assert.rejects(
      extract({ dataset: manifestDataset(manifest('one.tsv', ['orl/s1/1.pgm']), { root: FIXTURES }), targets: [{ model: path.join(dir, 'wrong.json'), out }] }),
      /a\.onnx: input 'input': the card describes NCHW 64x64 RGB images \[N, 3, 64, 64\], the graph declares \[N, 3, 32, 32\]/,
    );
    assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.partial`));
    await assert.rejects(extract({ dataset: manifestDataset(path.join(dir, 'one.tsv'), { root: FIXTURES }), targets: [{ model: cardA, out: 'x.npy' }, { model: cardB, out: 'x.npy' }] }), /targets: expected distinct output files, received .*x\.npy twice/);
  });
});

describe('unreadable images', () => {
  const jpg = fs.readFileSync(path.join(FIXTURES, 'photos', 'lfw-Aaron_Eckhart_0001.jpg'));
  fs.mkdirSync(path.join(dir, 'bad'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'bad', 'truncated.jpg'), jpg.subarray(0, 4000));
  fs.writeFileSync(path.join(dir, 'bad', 'text.png'), 'not an image');
  for (const id of ['orl/s1/1.pgm', 'photos/tiny-val_0.jpg', 'photos/tiny-val_1.jpg']) {
    fs.mkdirSync(path.dirname(path.join(dir, 'bad', id)), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, id), path.join(dir, 'bad', id));
  }
  const ids = ['orl/s1/1.pgm', 'truncated.jpg', 'photos/tiny-val_0.jpg', 'missing.jpg', 'text.png', 'photos/tiny-val_1.jpg'];
  const list = manifest('bad/list.tsv', ids);

  test('are skipped with path and reason; the other rows are the right images, never zero rows', async () => {
    const out = path.join(dir, 'bad', 'e.npy');
    const summary = await extract({ dataset: manifestDataset(list), targets: [{ model: cardA, out }], batch: 2 });
    assert.equal(summary.rows, 3);
    assert.deepEqual(summary.skipped.map((s) => [s.index, s.id, s.path]), [[1, 'truncated.jpg', path.join(dir, 'bad', 'truncated.jpg')], [3, 'missing.jpg', path.join(dir, 'bad', 'missing.jpg')], [4, 'text.png', path.join(dir, 'bad', 'text.png')]]);
    assert.match(summary.skipped[0].reason, /cannot decode the image: .*(premature end|damaged or truncated)/i);
    assert.match(summary.skipped[1].reason, /cannot read the image: ENOENT/);
    assert.match(summary.skipped[2].reason, /unsupported image format/);
    const good = ['orl/s1/1.pgm', 'photos/tiny-val_0.jpg', 'photos/tiny-val_1.jpg'];
    assert.deepEqual(loadEmbeddings(out).ids, good);
    const ref = await singleImageRows(cardA, good.map((id) => path.join(dir, 'bad', id)));
    assertRowsMatch(out, ref.map((r) => r.embeddings), 'kept rows');
  });

  test('--strict aborts at the first one, naming it; the finished batches stay in the checkpoint and a rerun resumes', async () => {
    const out = path.join(dir, 'bad', 'strict.npy');
    const dataset = manifestDataset(list);
    await assert.rejects(extract({ dataset, targets: [{ model: cardA, out }], batch: 1, strict: true }), /truncated\.jpg: cannot decode the image: .*\(--strict: stopping; 1 images done are kept in the checkpoint\)/);
    assert.ok(!fs.existsSync(out));
    const record: ProgressRecord = JSON.parse(fs.readFileSync(`${out}.partial/progress.json`, 'utf8'));
    assert.deepEqual([record.done, record.rows], [1, 1]);
    const summary = await extract({ dataset, targets: [{ model: cardA, out }], batch: 1 });
    assert.deepEqual([summary.resumedFrom, summary.computed, summary.rows], [1, 5, 3]);
  });
});

describe('resumable CLI', () => {
  // Heavy enough that 48 batches take seconds, so the kills land mid-run.
  const net = convNet({
    input: { size: [96, 96] },
    layers: [{ op: 'conv', out: 32, kernel: 3 }, { op: 'conv', out: 32, kernel: 3 }, { op: 'conv', out: 32, kernel: 3, stride: 2 }, { op: 'gap' }],
    head: { classes: 10 },
    rng: seeded((rng() * 2 ** 32) >>> 0),
  });
  const root = path.join(dir, 'resume');
  fs.mkdirSync(path.join(root, 'imgs'), { recursive: true });
  writeModel(path.join(root, 'm.onnx'), net.model);
  const photos = fs.readdirSync(path.join(FIXTURES, 'photos')).sort();
  const N = 192, BATCH = 4;
  for (let i = 0; i < N; i++) {
    const f = photos[i % photos.length];
    fs.copyFileSync(path.join(FIXTURES, 'photos', f), path.join(root, 'imgs', `${String(i).padStart(3, '0')}${path.extname(f)}`));
  }
  const args = (out: string, model = path.join(root, 'm.onnx'), extra: string[] = []) =>
    ['extract', '--model', model, '--images', path.join(root, 'imgs'), '--out', path.join(root, out), '--logits', path.join(root, out.replace('.npy', '.logits.npy')), '--batch', String(BATCH), '--workers', '1', '--threads', '1', '--preset', 'imagenet', ...extra];
  const progressOf = (out: string): ProgressRecord | undefined => {
    try {
      return JSON.parse(fs.readFileSync(path.join(root, `${out}.partial`, 'progress.json'), 'utf8'));
    } catch {
      return undefined; // not written yet
    }
  };

  /** Starts the CLI and SIGKILLs it once its progress record shows at least `done` items. */
  async function killAt(out: string, done: number): Promise<ProgressRecord> {
    const child: ChildProcess = spawn(process.execPath, [CLI, ...args(out)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    for (;;) {
      const p = progressOf(out);
      if (p && p.done >= done) break;
      if (child.exitCode !== null) assert.fail(`the CLI finished before it could be killed at ${done} images: ${stderr}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', `the CLI ended before SIGKILL: ${stderr}`);
    return progressOf(out)!;
  }

  test('killed twice with SIGKILL and rerun: continues where the record says, output identical to an uninterrupted run', async () => {
    const first = await killAt('k.npy', 2 * BATCH);
    assert.ok(first.done < N, 'killed mid-run');
    assert.equal(first.done % BATCH, 0);
    assert.deepEqual([first.runs.length, first.runs[0].from, first.runs[0].computed, first.rows], [1, 0, first.done, first.done]);
    const second = await killAt('k.npy', first.done + 3 * BATCH);
    assert.ok(second.done < N, 'killed mid-run');
    // The second run started at the first's recorded position and computed only what followed.
    assert.deepEqual([second.runs.length, second.runs[1].from, second.runs[1].computed], [2, first.done, second.done - first.done]);
    const data = fs.statSync(path.join(root, 'k.npy.partial', '0.f32')).size;
    assert.ok(data >= second.rows * 32 * 4, 'the data file holds at least the recorded rows');

    const third = spawnSync(process.execPath, [CLI, ...args('k.npy')], { encoding: 'utf8' });
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stdout, new RegExp(`resumed: ${second.done} images were already done; this run computed ${N - second.done} in ${Math.ceil((N - second.done) / BATCH)} batches`));
    assert.ok(!fs.existsSync(path.join(root, 'k.npy.partial')), 'checkpoint removed');

    const whole = spawnSync(process.execPath, [CLI, ...args('full.npy')], { encoding: 'utf8' });
    assert.equal(whole.status, 0, whole.stderr);
    assert.match(whole.stdout, new RegExp(`computed ${N} images in ${N / BATCH} batches`));
    for (const [a, b] of [['k.npy', 'full.npy'], ['k.logits.npy', 'full.logits.npy'], ['k.ids.tsv', 'full.ids.tsv'], ['k.logits.ids.tsv', 'full.logits.ids.tsv']]) {
      assert.ok(fs.readFileSync(path.join(root, a)).equals(fs.readFileSync(path.join(root, b))), `${a} equals ${b}`);
    }
    const set = loadEmbeddings(path.join(root, 'k.npy'));
    assert.deepEqual([set.matrix.rows, set.matrix.cols, set.ids[0], set.ids[N - 1]], [N, 32, '000.jpg', '191.jpg']);
    assert.deepEqual(tempFiles(root), []);
  });

  test('a checkpoint of another model is refused with the way out; --restart starts over', async () => {
    const killed = await killAt('other.npy', BATCH);
    assert.ok(killed.done < N);
    const other = convNet({ input: { size: [96, 96] }, layers: [{ op: 'conv', out: 32, kernel: 3, stride: 4 }, { op: 'gap' }], head: { classes: 10 }, rng: seeded(5) });
    writeModel(path.join(root, 'm2.onnx'), other.model);
    const refused = spawnSync(process.execPath, [CLI, ...args('other.npy', path.join(root, 'm2.onnx'))], { encoding: 'utf8' });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /other\.npy\.partial: a checkpoint of another extraction \(output 1 comes from another model, card or tensor\); pass --restart/);
    const restarted = spawnSync(process.execPath, [CLI, ...args('other.npy', path.join(root, 'm2.onnx'), ['--restart', '--quiet'])], { encoding: 'utf8' });
    assert.equal(restarted.status, 0, restarted.stderr);
    assert.match(restarted.stdout, new RegExp(`computed ${N} images in ${N / BATCH} batches`));
    assert.equal(restarted.stderr, '', '--quiet: no progress lines');
  });

  test('--json: the summary as JSON, nothing else on stdout', () => {
    const r = spawnSync(process.execPath, [CLI, ...args('json.npy', undefined, ['--json', '--quiet'])], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.total, summary.rows, summary.computed, summary.models[0].dim, summary.dataset.kind], [N, N, N, 32, 'folder']);
    assert.equal(summary.models[0].out, path.join(root, 'json.npy'));
  });

  test('usage errors exit 2 and say what was expected', () => {
    const run = (...a: string[]) => spawnSync(process.execPath, [CLI, 'extract', ...a], { encoding: 'utf8' });
    const r1 = run('--model', 'm.onnx', '--images', root, '--out', 'a.npy', '--out', 'b.npy');
    assert.equal(r1.status, 2);
    assert.match(r1.stderr, /--out: expected one per --model \(1\), received 2/);
    const r2 = run('--model', 'm.onnx', '--images', root, '--out', 'a.npy', '--device', 'gpu');
    assert.match(r2.stderr, /--device: expected one of cpu, cuda, auto, received 'gpu'/);
    const r3 = run('--model', 'm.onnx', '--out', 'a.npy');
    assert.match(r3.stderr, /--images: expected a folder or manifest/);
    const r4 = run('--model', path.join(root, 'm.onnx'), '--images', root, '--out', path.join(root, 'u.npy'), '--batch', '0');
    assert.match(r4.stderr, /--batch: expected an integer >= 1, received 0/);
  });
});

describe('progress display', () => {
  test('a terminal gets a redrawn bar with rate and ETA; a pipe gets plain lines', async () => {
    const tty: string[] = [];
    const bar = new Progress({ write: (s: string) => tty.push(s), isTTY: true, columns: 100 }, 200, 50, { intervalMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    bar.update(100);
    bar.finish();
    assert.match(tty[0], /^\r\[#{10,}\.+\] 100\/200 images \(50%\) [\d.]+ img\/s ETA \d+s\x1b\[K$/);
    assert.ok(tty[tty.length - 1].endsWith('\n'));
    const plain: string[] = [];
    const lines = new Progress({ write: (s: string) => plain.push(s) }, 10, 0, { intervalMs: 0 });
    lines.update(5);
    lines.update(10);
    lines.finish();
    assert.ok(plain.every((l) => !l.includes('\r') && l.endsWith('\n')));
    assert.match(plain[plain.length - 1], /^10\/10 images \(100%\) [\d.]+ img\/s in \d+s\n$/);
  });
});
