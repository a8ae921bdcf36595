// The map file: round trip, the Python snippet of docs/MAPS.md reading it, application paths
// agreeing with a float64 reference, immutability, and corrupt files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { LinearMap, MAP_FORMAT } from '../src/maps/linear-map';
import { makeRng, randn } from './helpers/random';
import { numpySkip } from './helpers/io';
import { matmul, relErr, toF64 } from './helpers/reference';

const rng = makeRng('maps.test');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-maps-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function sampleMap(p = 24, q = 10) {
  const W = randn(rng, p, q, 'float64'), b = randn(rng, 1, q, 'float64').data;
  const map = LinearMap.create(W, b, { source: { model: 'netA', dim: p }, target: { model: 'netB', dim: q }, estimator: 'lstsq', params: { rcond: 0.001 }, pairs: 1234, diagnostics: { rank: p } });
  return { W, b, map };
}

test('save and load keep tensors and metadata', () => {
  const { map } = sampleMap();
  const file = path.join(dir, 'm.safetensors');
  map.save(file);
  const back = LinearMap.load(file);
  assert.deepEqual(back.weight().data, map.weight().data);
  assert.deepEqual(back.bias(), map.bias());
  assert.equal(back.metadata.source.model, 'netA');
  assert.equal(back.metadata.target.dim, 10);
  assert.equal(back.metadata.pairs, 1234);
  assert.deepEqual(back.metadata.params, { rcond: 0.001 });
  assert.match(back.metadata.library, /^embmap \d+\.\d+\.\d+/);
  assert.ok(!Number.isNaN(Date.parse(back.metadata.created)));
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('the NumPy snippet in docs/MAPS.md reads a written map', (t) => {
  const reason = numpySkip();
  if (reason) return t.skip(reason);
  const { map } = sampleMap(7, 5);
  const file = path.join(dir, 'py.safetensors');
  map.save(file);
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'MAPS.md'), 'utf8');
  const snippet = /```python\n([\s\S]*?)```/.exec(doc)![1].split('\nweight, bias, meta')[0];
  const script = `${snippet}\nimport sys\nw, b, m = load_map(sys.argv[1])\nprint(json.dumps({"shape": list(w.shape), "w": w.ravel().tolist(), "b": b.tolist(), "format": m["format"], "src": m["source_model"]}))`;
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.shape, [7, 5]);
  assert.deepEqual(Float32Array.from(out.w), map.weight().data);
  assert.deepEqual(Float32Array.from(out.b), map.bias());
  assert.equal(out.format, MAP_FORMAT);
  assert.equal(out.src, 'netA');
});

test('apply, applyBatch and applyBatchSync agree with the float64 reference', async () => {
  const { W, b, map } = sampleMap(32, 16);
  const X = randn(rng, 50, 32, 'float32');
  const ref = matmul(toF64(X), toF64(W));
  for (let i = 0; i < 50; i++) for (let j = 0; j < 16; j++) ref.data[i * 16 + j] += b[j];
  const batch = await map.applyBatch(X);
  assert.ok(relErr(batch.data, ref.data) < 1e-5);
  assert.ok(relErr(map.applyBatchSync(X.astype('float64')).data, ref.data) < 1e-6);
  const one = map.apply(X.row(3));
  assert.ok(relErr(one, ref.data.subarray(3 * 16, 4 * 16)) < 1e-5);
  assert.ok(relErr(map.apply(Array.from(X.row(3))), one) < 1e-6);
});

test('a map is immutable: metadata frozen, weight() and bias() are copies', () => {
  const { map } = sampleMap();
  assert.throws(() => {
    (map.metadata as { pairs: number }).pairs = 1;
  }, TypeError);
  assert.throws(() => {
    (map.metadata.params as Record<string, unknown>).x = 1;
  }, TypeError);
  const w = map.weight();
  w.data.fill(0);
  assert.notEqual(map.weight().data[0], 0);
});

test('bad input: wrong dimensions, NaN, corrupt or foreign files', () => {
  const { map } = sampleMap(24, 10);
  assert.throws(() => map.apply(new Float32Array(23)), /vector: expected length 24 \(the map's source dimension\), received 23/);
  assert.throws(() => map.apply([...new Array(23).fill(0), NaN]), /vector: expected finite numbers, received NaN at index 23/);
  assert.throws(() => map.applyBatchSync(Matrix.zeros(3, 5)), /X: expected 24 columns \(the map's source dimension\), received 3x5/);
  assert.throws(() => map.apply('abc' as never), /vector: expected an array of 24 numbers/);
  const file = path.join(dir, 'bad.safetensors');
  map.save(file);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 7));
  assert.throws(() => LinearMap.load(file), /bad.safetensors/);
  const other = path.join(dir, 'other.safetensors');
  LinearMap.create(Matrix.zeros(2, 2, 'float64'), new Float64Array(2)).save(other);
  const raw = fs.readFileSync(other);
  fs.writeFileSync(other, Buffer.from(raw.toString('latin1').replace('"bias"', '"biaz"'), 'latin1'));
  assert.throws(() => LinearMap.load(other), /expected a 1-D tensor "bias" of length 2, found none/);
  assert.throws(() => LinearMap.create(Matrix.zeros(2, 3, 'float64'), new Float64Array(2)), /bias: expected length 3 \(the weight's columns\), received 2/);
});
