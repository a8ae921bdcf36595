// embmap as a dependency: what `require('embmap')` loads (the map API needs no ONNX Runtime,
// sharp, HTTP framework or model package), the error for a missing optional package, the
// ES module entry of the exports map, and declarations that compile without the optional packages.
// Each check of what loads runs in a fresh Node process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { isBuiltin } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ts from 'typescript';
import { tempDir } from './helpers/io';

const ROOT = path.resolve(__dirname, '..', '..');
const HEAVY = ['onnxruntime-node', 'sharp', '@img', 'fastify', 'onnx-proto', 'protobufjs', 'flatbuffers', '@vladmandic'];
const dir = tempDir();
// What require('embmap') loads: matrices, the engine, maps and the batcher (the rest on first access).
const MAP_API = ['index.js', 'core/matrix.js', 'core/validate.js', 'engine/engine.js', 'native/binding.js', 'maps/linear-map.js', 'io/safetensors.js', 'io/atomic.js', 'io/binary.js', 'io/json.js', 'version.js', 'serve/batcher.js', 'serve/codec.js'];

/** Runs `code` (CommonJS, or an ES module with esm) in a new Node process in the repository; returns stdout. */
function node(code: string, opts: { esm?: boolean; preload?: string } = {}): string {
  const args = [...(opts.preload ? ['--require', opts.preload] : []), ...(opts.esm ? ['--input-type=module'] : []), '-e', code];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `node ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

/** The node_modules packages among the loaded modules. */
const LOADED = `Object.keys(require.cache).filter((f) => f.includes('/node_modules/')).map((f) => f.split('/node_modules/').pop().split('/').slice(0, f.split('/node_modules/').pop().startsWith('@') ? 2 : 1).join('/'))`;

test('require("embmap") and fitting and applying a map load no heavy package', () => {
  const out = JSON.parse(node(`
    const embmap = require('embmap');
    const atRequire = [...new Set(${LOADED})];
    const ownAtRequire = Object.keys(require.cache).filter((f) => !f.includes('/node_modules/')).map((f) => f.split('/dist/src/').pop());
    const { Matrix, LstsqEstimator, MicroBatcher } = embmap;
    const X = new Matrix(Float64Array.from({ length: 40 * 3 }, (_, i) => Math.random() * 2 - 1), 40, 3);
    const W = [[1, 2], [-1, 0.5], [0.25, 3]];
    const Y = new Matrix(Float64Array.from({ length: 40 * 2 }, (_, i) => { const r = Math.floor(i / 2), c = i % 2; return W.reduce((s, w, k) => s + X.get(r, k) * w[c], 0) + 0.5; }), 40, 2);
    new LstsqEstimator().fit(X, Y).then(async (est) => {
      const map = est.toMap();
      const y = map.apply([1, 2, 3]);
      const batcher = new MicroBatcher(map);
      const z = await batcher.submit(Float32Array.of(1, 2, 3), 1);
      console.log(JSON.stringify({ atRequire, ownAtRequire, afterUse: [...new Set(${LOADED})], y: [...y], z: [...z] }));
    });`));
  assert.deepEqual(out.atRequire, [], 'packages loaded by require("embmap")');
  assert.deepEqual(out.ownAtRequire.filter((f: string) => !MAP_API.includes(f)), [], 'require("embmap") loads the map API\'s modules and nothing else');
  const heavy = (out.afterUse as string[]).filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)));
  assert.deepEqual(heavy, [], `heavy packages loaded by fitting and applying a map (all loaded: ${out.afterUse.join(', ')})`);
  // y = x W + b with x = (1, 2, 3): the fit recovered W and b from noiseless pairs.
  const want = [1 * 1 + 2 * -1 + 3 * 0.25 + 0.5, 1 * 2 + 2 * 0.5 + 3 * 3 + 0.5];
  for (const got of [out.y, out.z]) got.forEach((v: number, i: number) => assert.ok(Math.abs(v - want[i]) < 1e-4, `${v} vs ${want[i]}`));
});

test('a missing optional package is an error naming the package to install and the feature that needs it', () => {
  // Resolving the package fails as it does where it is not installed.
  const preload = path.join(dir, 'hide.js');
  fs.writeFileSync(preload, `
    const Module = require('node:module');
    const hidden = new Set(process.env.HIDE.split(','));
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      if (hidden.has(request)) { const e = new Error("Cannot find module '" + request + "'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
      return resolve.call(this, request, ...rest);
    };`);
  const notOnnx = path.join(dir, 'not-parsed.onnx');
  fs.writeFileSync(notOnnx, 'never decoded');
  const person = path.join(ROOT, 'demo', 'lfw', 'images', fs.readdirSync(path.join(ROOT, 'demo', 'lfw', 'images'))[0]);
  const face = path.join(person, fs.readdirSync(person)[0]);
  const cases: [string, string, RegExp][] = [
    ['fastify', `const m = embmap.LinearMap.create(new embmap.Matrix(new Float32Array(4), 2, 2), new Float32Array(2)); embmap.createMapServer({ maps: { m } });`, /embmap: the HTTP service needs the package fastify, which is not installed; install it with: npm install fastify@\^5/],
    ['onnxruntime-node', `await embmap.FaceDetector.open();`, /embmap: running ONNX models needs the package onnxruntime-node, which is not installed; install it with: npm install onnxruntime-node@\^1\.30/],
    ['onnx-proto', `await embmap.resolveModel(${JSON.stringify(notOnnx)});`, /embmap: reading and writing ONNX models needs the package onnx-proto, .*npm install onnx-proto@\^8/],
    ['sharp', `await embmap.alignImages([${JSON.stringify(face)}], { cache: ${JSON.stringify(path.join(dir, 'align'))} });`, /embmap: reading images needs the package sharp, which is not installed; install it with: npm install sharp@\^0\.35/],
  ];
  for (const [pkg, call, pattern] of cases) {
    const code = `const embmap = require('embmap'); (async () => { ${call} })().then(() => console.log('no error'), (e) => console.log(e.message));`;
    const r = spawnSync(process.execPath, ['--require', preload, '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HIDE: pkg } });
    assert.match(r.stdout, pattern, `${pkg}: ${r.stdout}${r.stderr}`);
  }
});

test('the ES module entry exports what the CommonJS entry does, the same objects', () => {
  const out = JSON.parse(node(`
    import * as esm from 'embmap';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('embmap');
    const names = Object.keys(cjs);
    console.log(JSON.stringify({ names, missing: names.filter((k) => !(k in esm)), same: names.every((k) => esm[k] === cjs[k]) }));`, { esm: true }));
  for (const name of ['LinearMap', 'MicroBatcher', 'createMapServer', 'Engine', 'readNpy', 'importModel', 'extract']) assert.ok(out.names.includes(name), name);
  assert.deepEqual(out.missing, []);
  assert.ok(out.same, 'one instance for both module systems');
});

test('the exports loaded on first access are their modules\' own objects; every export of the modules re-exported whole is there', () => {
  const out = JSON.parse(node(`
    const embmap = require('embmap');
    const whole = { estimators: require('./dist/src/estimators'), io: require('./dist/src/io') };
    const some = Object.assign({}, ...['engine/stats', 'engine/doctor', 'importers/catalogue', 'models/presets', 'faces/similarity', 'faces/warp', 'faces/detector', 'models/load', 'models/draft', 'evaluate/diagnostics', 'evaluate/split', 'evaluate/verification', 'evaluate/identification', 'evaluate/classification'].map((m) => require('./dist/src/' + m)));
    const exported = Object.keys(some).filter((k) => Object.getOwnPropertyDescriptor(embmap, k)?.get); // not the functions that load on call
    console.log(JSON.stringify({
      missing: Object.values(whole).flatMap((m) => Object.keys(m).filter((k) => !(k in embmap))),
      other: [...Object.values(whole).flatMap((m) => Object.keys(m).filter((k) => embmap[k] !== m[k])), ...exported.filter((k) => embmap[k] !== some[k])],
      checked: Object.values(whole).reduce((n, m) => n + Object.keys(m).length, 0) + exported.length,
    }));`));
  assert.deepEqual(out.missing, [], 'exports of src/estimators or src/io missing from the root');
  assert.deepEqual(out.other, [], 'root exports that are not the module\'s objects');
  assert.ok(out.checked >= 50, `${out.checked} exports checked`);
});

test('the exports map hides internal files', () => {
  const r = spawnSync(process.execPath, ['-e', `require('embmap/dist/src/maps/linear-map')`], { cwd: ROOT, encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});

test('the published declarations import only Node and embmap\'s dependencies, none of the optional packages', () => {
  // A TypeScript user without, say, sharp type-checks every declaration the package's types reach
  // (skipLibCheck off): one importing sharp is "Cannot find module 'sharp'" there. .ci/consumer/run
  // checks the packed package the same way, by compiling against it.
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { types: string; dependencies: Record<string, string> };
  const allowed = (spec: string) => isBuiltin(spec) || Object.keys(pkg.dependencies).some((d) => spec === d || spec.startsWith(`${d}/`));
  const seen = new Set<string>();
  const queue = [path.join(ROOT, pkg.types)];
  const foreign: string[] = [];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const { importedFiles, typeReferenceDirectives } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    for (const { fileName: spec } of [...importedFiles, ...typeReferenceDirectives]) {
      if (spec.startsWith('.')) {
        const base = path.resolve(path.dirname(file), spec);
        queue.push(fs.existsSync(`${base}.d.ts`) ? `${base}.d.ts` : path.join(base, 'index.d.ts'));
      } else if (!allowed(spec)) {
        foreign.push(`${path.relative(ROOT, file)}: '${spec}'`);
      }
    }
  }
  assert.deepEqual(foreign, [], 'declarations importing packages a user of embmap may not have');
  assert.ok(seen.size >= 50, `${seen.size} declarations reached`);
});
