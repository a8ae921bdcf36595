// The command line end to end: fit (pairing rows by id), apply, inspect, and its errors; the
// conventions of every command (--version, --help, --, --json, the flag spec).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { helpText, parseArgs, UsageError } from '../src/cli/command';
import { commands } from '../src/cli/main';
import { Matrix } from '../src/core/matrix';
import { loadEmbeddings, saveEmbeddings } from '../src/io/embeddings';
import { writeNpy as writeNpyFile } from '../src/io/npy';
import { writeSafetensors } from '../src/io/safetensors';
import { LinearMap } from '../src/maps/linear-map';
import { makeRng, randn } from './helpers/random';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('cli.test');
const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-cli-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const f = (name: string) => path.join(dir, name);

// A: 300 x 20, B = A M + b, stored with B's rows in reverse order: fit must pair by id.
const n = 300, p = 20, q = 12;
const A = randn(rng, n, p, 'float32');
const M = randn(rng, p, q, 'float64');
const BA = matmul(toF64(A), M);
const B = Matrix.zeros(n, q, 'float32');
for (let i = 0; i < n; i++) for (let j = 0; j < q; j++) B.data[(n - 1 - i) * q + j] = BA.data[i * q + j] + 1;
const ids = Array.from({ length: n }, (_, i) => `img${i}`);
saveEmbeddings(f('a.npy'), { matrix: A, ids });
saveEmbeddings(f('b.npy'), { matrix: B, ids: [...ids].reverse() });

test('fit pairs rows by id, fits on every pair, reports cross-fit held-out diagnostics, writes a map', () => {
  const r = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'lstsq', '--out', f('m.safetensors'), '--source-model', 'A');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*m\.safetensors: lstsq map 20 -> 12 from 300 pairs/);
  assert.match(r.stdout, /held-out \(5-fold cross-fit, every pair; cosine on 300\): relative residual [0-9.e-]+, mean R² 1\.000, cosine mean 1\.000/);
  const map = LinearMap.load(f('m.safetensors'));
  assert.equal(map.metadata.source.model, 'A');
  assert.equal(map.metadata.pairs, 300);
  assert.deepEqual(map.metadata.diagnostics.fit, { protocol: 'crossfit', folds: 5, seed: 0, mapPairs: 300 });
  assert.ok(relErr(map.weight().data, M.data) < 1e-4);
  // Fewer pairs scored, asked for: two folds of 60 hold 120 >= 100.
  const few = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--score-pairs', '100', '--out', f('m-few.safetensors'));
  assert.equal(few.status, 0, few.stderr);
  assert.match(few.stdout, /held-out \(5-fold cross-fit, 2 folds scored, 120 pairs; cosine on 120\)/);
  assert.deepEqual(LinearMap.load(f('m-few.safetensors')).metadata.diagnostics.fit, { protocol: 'crossfit', folds: 5, scoredFolds: 2, scorePairs: 100, seed: 0, mapPairs: 300 });
  for (const [flags, why] of [[['--score-pairs', '0'], /--score-pairs: expected an integer >= 1, received 0/], [['--score-pairs', '10', '--no-diagnostics'], /--score-pairs: not with --no-diagnostics/], [['--score-pairs', '10', '--test-fraction', '0.2'], /--score-pairs: not with --test-fraction/]] as const) {
    const bad = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), ...flags, '--out', f('m-bad.safetensors'));
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, why);
  }
  // A plain split, asked for: fitted on the rest, recorded as such.
  const s = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--test-fraction', '0.1', '--out', f('m-split.safetensors'));
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /from 270 pairs \(a split: 30 more held out\)/);
  assert.match(s.stdout, /held-out \(split, 30 pairs\): relative residual [0-9.e-]+, mean R² 1\.000, cosine mean 1\.000/);
  assert.deepEqual(LinearMap.load(f('m-split.safetensors')).metadata.diagnostics.fit, { protocol: 'split', testFraction: 0.1, seed: 0, trainPairs: 270, testPairs: 30 });
});

test('apply maps a set and carries its ids; inspect describes files', () => {
  const r = run('apply', '--map', f('m.safetensors'), '--input', f('a.npy'), '--out', f('a2b.npy'), '--normalize');
  assert.equal(r.status, 0, r.stderr);
  const out = loadEmbeddings(f('a2b.npy'));
  assert.deepEqual(out.ids, ids);
  assert.ok(Math.abs(Math.hypot(...out.matrix.row(5)) - 1) < 1e-5);
  const i1 = run('inspect', f('m.safetensors'));
  assert.equal(i1.status, 0, i1.stderr);
  assert.match(i1.stdout, /kind: embmap linear map/);
  assert.match(i1.stdout, /estimator: lstsq/);
  const i2 = run('inspect', f('a.npy'), '--json');
  assert.deepEqual(JSON.parse(i2.stdout).shape, [n, p]);
});

test('every method runs from the command line', () => {
  for (const args of [['--method', 'ridge', '--lambda', 'gcv'], ['--method', 'ridge', '--lambda', 'cv'], ['--method', 'procrustes', '--scale'], ['--method', 'lowrank', '--rank', '4']]) {
    const r = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), ...args, '--out', f('x.safetensors'), '--json');
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).estimator, args[1]);
  }
  const C = 8;
  writeSafetensors(f('headA.safetensors'), { weight: randn(rng, C, p, 'float32'), bias: new Float32Array(C) });
  writeSafetensors(f('headB.safetensors'), { weight: randn(rng, C, q, 'float32'), bias: new Float32Array(C) });
  const w = run('fit', '--source', f('headA.safetensors'), '--target', f('headB.safetensors'), '--method', 'weights', '--out', f('w.safetensors'));
  assert.equal(w.status, 0, w.stderr);
  assert.match(w.stdout, /weights map 20 -> 12/);
  // Ridge toward the head-only map, and toward a map file; the prior's provenance recorded.
  const heads = ['--source-head', f('headA.safetensors'), '--target-head', f('headB.safetensors')];
  const rw = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'ridge', '--prior', 'weights', ...heads, '--out', f('rw.safetensors'));
  assert.equal(rw.status, 0, rw.stderr);
  assert.deepEqual(
    (({ from, sourceHead, classes, bias }) => ({ from, sourceHead, classes, bias }))(LinearMap.load(f('rw.safetensors')).metadata.params.prior as Record<string, unknown>),
    { from: 'weights', sourceHead: f('headA.safetensors'), classes: C, bias: "shrunk toward the prior's bias with the weight" },
  );
  const rf = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'ridge', '--prior', f('w.safetensors'), '--out', f('rf.safetensors'));
  assert.equal(rf.status, 0, rf.stderr);
  const fromFile = LinearMap.load(f('rf.safetensors')).metadata.params.prior as Record<string, unknown>;
  assert.deepEqual([fromFile.from, fromFile.bias], [f('w.safetensors'), "shrunk toward the prior's bias with the weight"]);
  // --lambda Infinity: the prior map itself, weight and bias.
  const ri = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'ridge', '--prior', f('w.safetensors'), '--lambda', 'Infinity', '--out', f('ri.safetensors'));
  assert.equal(ri.status, 0, ri.stderr);
  const [kept, prior] = [LinearMap.load(f('ri.safetensors')), LinearMap.load(f('w.safetensors'))];
  assert.deepEqual([Array.from(kept.weight().data), Array.from(kept.bias())], [Array.from(prior.weight().data), Array.from(prior.bias())]);
  LinearMap.create(Matrix.zeros(q, p, 'float64'), new Float64Array(p)).save(f('wrong.safetensors'));
  const bad: [string[], RegExp][] = [
    [['--prior', 'weights', '--source-head', f('headA.safetensors')], /targetHead: required by prior 'weights'/],
    [['--prior', 'weights', '--source-head', f('headB.safetensors'), '--target-head', f('headB.safetensors')], /sourceHead: expected a head over the source's 20-dimensional embeddings/],
    [['--prior', f('a.npy')], /--prior: expected a LinearMap, \{ weight: Matrix, bias\? \}, a map file \(\.safetensors\) or one of weights, received/],
    [['--prior', f('wrong.safetensors')], /prior: expected a 20x12 map .* received a 12x20 map/],
  ];
  for (const [args, message] of bad) {
    const r = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'ridge', '--out', f('bad.safetensors'), ...args);
    assert.notEqual(r.status, 0, `${args.join(' ')} was accepted`);
    assert.match(r.stderr, message, args.join(' '));
    assert.ok(!fs.existsSync(f('bad.safetensors')));
  }
});

test('the streaming fit equals the in-memory fit', () => {
  saveEmbeddings(f('b-ordered.npy'), { matrix: new Matrix(Float32Array.from(BA.data, (v) => v + 1), n, q), ids });
  const s = run('fit', '--source', f('a.npy'), '--target', f('b-ordered.npy'), '--stream', '--out', f('s.safetensors'));
  const m = run('fit', '--source', f('a.npy'), '--target', f('b-ordered.npy'), '--test-fraction', '0', '--out', f('t.safetensors'));
  assert.equal(s.status, 0, s.stderr);
  assert.equal(m.status, 0, m.stderr);
  assert.ok(relErr(LinearMap.load(f('s.safetensors')).weight().data, LinearMap.load(f('t.safetensors')).weight().data) < 1e-5);
  const bad = run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--stream', '--out', f('u.safetensors'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /streaming needs rows paired by position, but row 0 is id 'img0'/);
});

test('bad input: clear messages and exit codes, no output file', () => {
  const cases: [string[], number, RegExp][] = [
    [['fit', '--source', f('a.npy'), '--target', f('b.npy'), '--method', 'pca', '--out', f('z.safetensors')], 2, /--method: expected one of lstsq, ridge, procrustes, lowrank, weights, received 'pca'/],
    [['fit', '--source', f('a.npy'), '--out', f('z.safetensors')], 2, /--target: expected embeddings in the target space.*, received nothing\nusage: embmap fit/],
    [['fit', '--bogus'], 2, /unknown option --bogus/],
    [['apply', '--map', f('m.safetensors'), '--input', f('b.npy'), '--out', f('z.npy')], 1, /--input: expected 20-d embeddings for this 20 -> 12 map, received 300x12/],
    [['inspect', f('missing.npy')], 1, /missing\.npy/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
  ];
  for (const [args, code, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  saveEmbeddings(f('c.npy'), { matrix: randn(rng, 5, p, 'float32'), ids: ['x1', 'x2', 'x3', 'x4', 'x5'] });
  const unpaired = run('fit', '--source', f('c.npy'), '--target', f('b.npy'), '--out', f('z.safetensors'));
  assert.equal(unpaired.status, 1);
  assert.match(unpaired.stderr, /id/);
  const nan = Matrix.zeros(4, p, 'float32');
  nan.set(2, 3, NaN);
  saveEmbeddings(f('nan.npy'), { matrix: nan, ids: ['img0', 'img1', 'img2', 'img3'] });
  const r = run('fit', '--source', f('nan.npy'), '--target', f('b.npy'), '--out', f('z.safetensors'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /row 2.*img2/);
  assert.ok(!fs.existsSync(f('z.safetensors')) && !fs.existsSync(f('z.npy')));
});

// Conventions every command follows (src/cli/command.ts): one spec gives parser and usage text.
test('--version, -V and version print the package version; --json too', () => {
  const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  for (const a of [['--version'], ['-V'], ['version']]) {
    const r = run(...a);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `embmap ${version}\n`);
  }
  assert.equal(JSON.parse(run('version', '--json').stdout).embmap, version);
});

test('-h and --help print usage on every command, before any required-flag check', () => {
  commands.forEach((cmd, i) => {
    const flag = i % 2 ? '-h' : '--help';
    const r = run(cmd.name, flag);
    assert.equal(r.status, 0, `${cmd.name} ${flag}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: embmap ${cmd.name}`), cmd.name);
    for (const name of Object.keys(cmd.flags)) assert.ok(r.stdout.includes(`--${name}`), `${cmd.name} --help lists --${name}`);
  });
  assert.equal(run('help', 'apply').stdout, run('apply', '--help').stdout);
  const fit = run('fit', '-h'); // its estimator flags come from the parameter declaration
  assert.equal(fit.status, 0, fit.stderr);
  assert.match(fit.stdout, /^usage: embmap fit --out MAP\.safetensors \[options\]/);
  assert.match(fit.stdout, /\n +--rank K +\(lowrank; required\) rank of the map\n/);
});

test('-- ends the options: a file named like an option is a positional argument', () => {
  saveEmbeddings(f('--odd.npy'), { matrix: randn(rng, 3, 4, 'float32'), ids: ['r0', 'r1', 'r2'] });
  const r = spawnSync(process.execPath, [cli, 'inspect', '--json', '--', '--odd.npy'], { encoding: 'utf8', cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).shape, [3, 4]);
  const without = spawnSync(process.execPath, [cli, 'inspect', '--odd.npy'], { encoding: 'utf8', cwd: dir });
  assert.equal(without.status, 2);
  assert.match(without.stderr, /unknown option --odd\.npy/);
});

test('--json on the commands that report: apply, doctor, inspect, fit', () => {
  const a = run('apply', '--map', f('m.safetensors'), '--input', f('a.npy'), '-o', f('j.npy'), '--json');
  assert.equal(a.status, 0, a.stderr);
  assert.deepEqual(JSON.parse(a.stdout), { out: f('j.npy'), rows: n, cols: q, dtype: 'float32', normalized: false });
  assert.equal(typeof JSON.parse(run('doctor', '--json').stdout), 'object');
  // serve and worker report nothing (they run until stopped).
  for (const cmd of commands.filter((c) => c.name !== 'serve' && c.name !== 'worker')) assert.ok('json' in cmd.flags, `${cmd.name} has --json`);
});

test('usage errors name the flag, what was expected and what was received', () => {
  const cases: [string[], RegExp][] = [
    [['apply', '--map', f('m.safetensors'), '--map', f('m.safetensors'), '--input', f('a.npy'), '--out', f('z.npy')], /--map: expected once, received it twice/],
    [['apply', '--input', f('a.npy'), '--out', f('z.npy')], /--map: expected a map written by embmap fit, received nothing/],
    [['apply', '--map', f('m.safetensors'), '--input', f('a.npy'), '--out', '--json'], /--out: expected a value \(A2B\.npy\), received option --json/],
    [['apply', '--normalize=yes'], /--normalize: expected no value, true or false, received 'yes'/],
    [['apply', '-x'], /unknown option -x/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--seed', 'abc'], /--seed: expected a number, received 'abc'/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--folds', '1,x'], /--folds: expected fold numbers 1, 2, \.\.\., received '1,x'/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--choose-crops', '--no-align'], /--choose-crops: chooses windows of the aligned face, so it needs alignment/],
    [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--method', 'pca'], /--method: expected one of lstsq, ridge, procrustes, lowrank, received 'pca'/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--prior', 'weights'], /--prior: face networks have no classifier heads .* received 'weights'/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--method', 'ridge', '--target-head', f('h.safetensors')], /--target-head: face networks have no classifier heads/],
    ...['0', '-1', '2.5', '5000'].map((v): [string[], RegExp] => [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--views', v], new RegExp(`--views: expected a whole number of views per fit image from 1 to 1000, received ${v.replace('.', '\\.')}`)]),
    [['experiment', 'classification', '--models', 'a,b', '--images', `${dir},${dir}x`], /--test-images: expected the test images when --images names 2 sources, received nothing/],
    [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--views-on', dir], /--views-on: only applies with --views/],
    [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--curve', '100,1'], /--curve: expected numbers of images >= 2, received '1'/],
    [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--methods', 'lstsq,pca'], /--methods: expected some of lstsq, ridge, ridge-prior, received 'pca'/],
    [['experiment', 'classification', '--models', 'a,b', '--images', dir, '--methods', 'lstsq', '--method', 'ridge'], /--method: not with --methods/],
    ...['0', '-1', '2.5', '5000'].map((v): [string[], RegExp] => [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--views', v], new RegExp(`--views: expected a whole number of views per fit image from 1 to 1000, received ${v.replace('.', '\\.')}`)]),
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--views', '4', '--views-on', dir], /--views-on: only applies to the classification experiment/],
    [['experiment', 'faces', '--models', 'a,b', '--lfw', dir, '--curve-pair', 'a'], /--curve-pair: expected two model ids A,B, received 'a'/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /\nusage: embmap /, 'ends with the usage line');
  }
  assert.ok(!fs.existsSync(f('z.npy')));
});

test('parseArgs: defaults, required, repeatable, short aliases, choices, numbers; the older shape too', () => {
  const flags = {
    out: { type: 'string', short: 'o', required: true, description: 'an output file' },
    n: { type: 'number', default: 3, description: 'a count' },
    tag: { type: 'string', repeatable: true, description: 'a tag' },
    mode: { type: 'string', choices: ['a', 'b'], default: 'a', description: 'a mode' },
    old: 'strings',
    flag: 'boolean',
    lambda: 'number',
  } as const;
  assert.deepEqual(parseArgs(['-o', 'x', 'p1', '--tag', 't1', '--tag=t2', '--old', 'u', '--flag=false', '--lambda', '-1e-3', '--', '-p2'], flags), {
    positional: ['p1', '-p2'], out: 'x', tag: ['t1', 't2'], old: ['u'], flag: false, lambda: -1e-3, n: 3, mode: 'a',
  });
  assert.deepEqual(parseArgs(['-ox', '--n', '7', '--mode', 'b', '--flag'], flags), { positional: [], out: 'x', n: 7, mode: 'b', flag: true });
  assert.deepEqual(parseArgs(['--help'], flags), { positional: [], help: true });
  assert.throws(() => parseArgs([], flags), (e: Error) => e instanceof UsageError && /^--out: expected an output file, received nothing/.test(e.message));
  assert.throws(() => parseArgs(['-o', 'x', '--n', ' '], flags), /--n: expected a number, received ' '/);
  assert.throws(() => parseArgs(['--out='], flags), /--out: expected a value, received ''/);
  assert.throws(() => parseArgs(['-o', 'x', '--out', 'y'], flags), /--out: expected once, received it twice \(-o and --out\)/);
  assert.throws(() => parseArgs(['-o', 'x', '--mode', 'c'], flags), /--mode: expected one of a, b, received 'c'/);
  const text = helpText({ name: 'x', summary: 'does x', positional: 'FILE', flags, run() {} });
  assert.match(text, /^usage: embmap x FILE --out VALUE \[options\]\n\ndoes x\n/);
  assert.match(text, /\n  -o, --out VALUE +an output file \(required\)\n/);
  assert.match(text, /\n +--n N +a count \(default 3\)\n/);
  assert.match(text, /\n +--tag VALUE +a tag \(repeatable\)\n/);
  assert.match(text, /\n +--mode a\|b +a mode \(default a\)\n/);
  assert.match(text, /\n  -h, --help +show this help/);
});

test('fit refuses what it used to accept silently: irrelevant parameters, bad fractions, repeated flags', () => {
  const fit = (...args: string[]) => run('fit', '--source', f('a.npy'), '--target', f('b.npy'), '--out', f('z.safetensors'), ...args);
  const cases: [string[], RegExp][] = [
    [['--method', 'lstsq', '--rank', '5'], /--rank: not a parameter of method 'lstsq', which takes --no-intercept, --precision, --rcond/],
    [['--method', 'lstsq', '--lambda', '3'], /--lambda: not a parameter of method 'lstsq'/],
    [['--method', 'lowrank', '--rank', '4', '--lambda', 'gcv'], /--lambda: expected a number >= 0, received string "gcv"/],
    [['--method', 'lowrank'], /--rank: required by method 'lowrank'/],
    [['--test-fraction', '1'], /--test-fraction: expected a number in \[0, 1\), received 1/],
    [['--test-fraction', '-0.1'], /--test-fraction: expected a number in \[0, 1\), received -0.1/],
    [['--test-fraction', '0.999'], /testFraction: 0.999 of 300 pairs leaves 0 to fit and 300 held out/],
    [['--test-fraction', '0.001'], /testFraction: 0.001 of 300 pairs leaves 300 to fit and 0 held out/],
    [['--stream', '--test-fraction', '0.2'], /--test-fraction: a plain split needs the rows in memory: drop --stream/],
    [['--source', f('b.npy')], /--source: (given more than once|expected once, received it twice)/], // main's new parser words it the second way
  ];
  for (const [args, message] of cases) {
    const r = fit(...args);
    assert.notEqual(r.status, 0, `${args.join(' ')} was accepted`);
    assert.match(r.stderr, message, args.join(' '));
    assert.ok(!fs.existsSync(f('z.safetensors')));
  }
  assert.match(run('fit', '--help').stdout, /--lambda X\|gcv\|cv\|cv-logits\|cv-top1\|task or X\s+\(ridge; default cv-top1 when the target head is given .*, else gcv\) .*; \(lowrank; default 0\)/);
});

test('fit: NaN in a streamed file is named by file and row; weights given .npy files says what it wanted', () => {
  const X = randn(rng, 50, p, 'float32'), Y = randn(rng, 50, q, 'float32');
  Y.set(41, 2, NaN);
  writeNpyFile(f('sx.npy'), X);
  writeNpyFile(f('sy.npy'), Y);
  const r = run('fit', '--source', f('sx.npy'), '--target', f('sy.npy'), '--stream', '--out', f('z.safetensors'));
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(`${f('sy.npy')}: expected finite values, received NaN at row 41, column 2`), r.stderr);
  X.set(7, 0, Infinity);
  Y.set(41, 2, 0);
  writeNpyFile(f('sx.npy'), X);
  writeNpyFile(f('sy.npy'), Y);
  const s = run('fit', '--source', f('sx.npy'), '--target', f('sy.npy'), '--stream', '--out', f('z.safetensors'));
  assert.equal(s.status, 1);
  assert.ok(s.stderr.includes(`${f('sx.npy')}: expected finite values, received Infinity at row 7, column 0`), s.stderr);
  const w = run('fit', '--method', 'weights', '--source', f('a.npy'), '--target', f('b.npy'), '--out', f('z.safetensors'));
  assert.equal(w.status, 1);
  assert.match(w.stderr, /--source: expected a classifier head file \(\.safetensors with "weight" C x d and "bias" C/);
  assert.ok(!fs.existsSync(f('z.safetensors')));
});

test('apply refuses a map with NaN weights', () => {
  const w = Matrix.zeros(p, q, 'float32');
  w.data[3] = NaN;
  writeSafetensors(f('nan-map.safetensors'), { weight: w, bias: new Float32Array(q) });
  const r = run('apply', '--map', f('nan-map.safetensors'), '--input', f('a.npy'), '--out', f('z.npy'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /expected finite values in "weight", found NaN at index 3/);
  assert.ok(!fs.existsSync(f('z.npy')));
});
