import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { type FloatArray, Matrix } from '../src/core/matrix';
import { type TensorInput, readSafetensors, writeSafetensors } from '../src/io';
import { makeRng, randn } from './helpers/random';
import { assertFormatError, hex, numpySkip, python, tempDir, tempFiles } from './helpers/io';

const dir = tempDir();
const rng = makeRng('io.safetensors');
let counter = 0;
const file = (name = 'a') => path.join(dir, `${name.replace(/\W+/g, '-')}-${counter++}.safetensors`);

/** A safetensors file built by hand: the header length (declared, or the JSON's), the JSON, the data. */
function stBytes(header: unknown, data: Uint8Array = new Uint8Array(0), declared?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declared ?? BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

function headerOf(f: string): { length: number; json: Record<string, unknown>; keys: string[] } {
  const bytes = fs.readFileSync(f);
  const length = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + length).toString('utf8');
  return { length, json: JSON.parse(text), keys: [...text.matchAll(/"([^"]+)":\{/g)].map((m) => m[1]) };
}

const dataOf = (t: TensorInput): FloatArray => (t instanceof Matrix ? t.data : t);
const shapeOf = (t: TensorInput): number[] => (t instanceof Matrix ? [t.rows, t.cols] : [t.length]);

test('round trips float32 and float64 tensors in the given order, with metadata and an 8-aligned header', () => {
  const tensors = new Map<string, TensorInput>([
    ['z_first', randn(rng, 5, 3, 'float32')],
    ['10', randn(rng, 1, 7, 'float64').data],
    ['empty', randn(rng, 0, 4, 'float32')],
    ['odd', randn(rng, 1, 3, 'float32')],
    ['after_odd', randn(rng, 2, 2, 'float64')],
    ['__proto__', new Float32Array([1, -0, Infinity, NaN])],
  ]);
  const metadata = { source: 'resnet50', note: 'ünïcode "quoted"' };
  const f = file();
  writeSafetensors(f, tensors, metadata);

  const { length, json, keys } = headerOf(f);
  assert.equal(length % 8, 0);
  assert.deepEqual(keys, ['__metadata__', ...tensors.keys()]);
  let offset = 0;
  for (const [name, t] of tensors) {
    const end = offset + dataOf(t).byteLength;
    assert.deepEqual(Object.getOwnPropertyDescriptor(json, name)?.value.data_offsets, [offset, end]);
    offset = end;
  }

  const read = readSafetensors(f);
  assert.deepEqual(read.metadata, metadata);
  assert.deepEqual([...read.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const got = read.tensors.get(name)!;
    assert.equal(got.dtype, dataOf(t) instanceof Float32Array ? 'float32' : 'float64');
    assert.deepEqual(got.shape, shapeOf(t));
    assert.equal(hex(got.data), hex(dataOf(t)), name);
  }
  assert.deepEqual(read.tensorAsMatrix('10').shape, [1, 7]);
  assert.deepEqual(read.tensorAsMatrix('z_first').shape, [5, 3]);
  assert.equal(read.tensorAsMatrix('z_first').data, read.tensors.get('z_first')!.data, 'a view, not a copy');
  assert.throws(() => read.tensorAsMatrix('nope'), /expected a tensor named "nope", found only "z_first", "10", "empty"/);
  assert.deepEqual(tempFiles(dir), []);
});

test('accepts a plain object without metadata, and reads only the requested names', () => {
  const a = randn(rng, 3, 2, 'float64');
  const f = file();
  writeSafetensors(f, { a, b: new Float32Array(5) });
  assert.deepEqual(readSafetensors(f).metadata, {});
  const only = readSafetensors(f, { names: ['a'] });
  assert.deepEqual([...only.tensors.keys()], ['a']);
  assert.equal(hex(only.tensorAsMatrix('a').data), hex(a.data));
  assert.throws(() => readSafetensors(f, { names: ['c'] }), new RegExp(`${f}: expected a tensor named "c", found only "a", "b"`));
  assert.throws(() => readSafetensors(f, { names: 'a' as never }), /options.names: expected an array of tensor names/);
});

test('tensorAsMatrix refuses tensors of rank other than 1 or 2', () => {
  const f = file();
  fs.writeFileSync(f, stBytes({ t: { dtype: 'F32', shape: [2, 1, 2], data_offsets: [0, 16] } }, new Uint8Array(16)));
  const read = readSafetensors(f);
  assert.deepEqual(read.tensors.get('t')!.shape, [2, 1, 2]);
  assert.throws(() => read.tensorAsMatrix('t'), /tensor "t": expected a 1-D or 2-D tensor, found shape \[2, 1, 2\]/);
});

test('writeSafetensors validates its arguments and writes nothing on error', () => {
  const before = fs.readdirSync(dir).length;
  const m = randn(rng, 2, 2, 'float32');
  assert.throws(() => writeSafetensors(file(), { m }, { n: 3 } as never), /metadata\["n"\]: expected a string, received number 3/);
  assert.throws(() => writeSafetensors(file(), { m }, [] as never), /metadata: expected an object of string values, received Array\(0\)/);
  assert.throws(() => writeSafetensors(file(), { __metadata__: m }), /tensor name: expected a non-empty name other than "__metadata__"/);
  assert.throws(() => writeSafetensors(file(), new Map([['', m]])), RangeError);
  assert.throws(() => writeSafetensors(file(), { x: [1, 2] as never }), /tensors\["x"\]: expected a Matrix, Float32Array or Float64Array, received Array\(2\)/);
  assert.throws(() => writeSafetensors(file(), null as never), /tensors: expected a Map or object/);
  assert.equal(fs.readdirSync(dir).length, before);
});

test('rejects malformed files with messages naming the file, the tensor and the problem', () => {
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  const t = (dtype: string, shape: number[], offsets: number[]) => ({ dtype, shape, data_offsets: offsets });
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /truncated file: expected at least 8 bytes \(the header length\), found 5/],
    ['header past end', stBytes({}, new Uint8Array(40), 1000n), /header length 1000 extends past the end of the file: expected at most 42 bytes/],
    ['huge header length', stBytes({}, new Uint8Array(0), 1n << 63n), /header length 9223372036854775808 extends past the end/],
    ['invalid JSON', stBytes('{"a": '), /invalid header: expected UTF-8 JSON, .*JSON/],
    ['invalid UTF-8', stBytes(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')), /invalid header: expected UTF-8 JSON/],
    ['JSON array', stBytes([1, 2]), /invalid header: expected a JSON object, found \[1,2\]/],
    ['entry not object', stBytes({ x: 5 }), /tensor "x": expected an object \{dtype, shape, data_offsets\}, found 5/],
    ['F16', stBytes({ w: t('F16', [2], [0, 4]) }, new Uint8Array(4)), /tensor "w": unsupported dtype: expected "F32" or "F64", found "F16"/],
    ['no dtype', stBytes({ w: { shape: [1], data_offsets: [0, 4] } }, f32(1)), /tensor "w": unsupported dtype: .*found nothing/],
    ['bad shape', stBytes({ w: t('F32', [2, -1], [0, 8]) }, f32(2)), /tensor "w": invalid shape: expected an array of non-negative integers, found \[2,-1\]/],
    ['reversed offsets', stBytes({ w: t('F32', [1], [8, 4]) }, f32(2)), /tensor "w": invalid data_offsets: expected \[begin, end\] with 0 <= begin <= end, found \[8,4\]/],
    ['size mismatch', stBytes({ w: t('F32', [2, 2], [0, 12]) }, f32(3)), /tensor "w": data_offsets \[0, 12\] span 12 bytes, expected 16 for shape \[2, 2\] F32/],
    ['overlap', stBytes({ a: t('F32', [4], [0, 16]), b: t('F32', [4], [8, 24]) }, f32(6)), /tensor "b" \(data_offsets \[8, 24\]\) overlaps tensor "a" \(data_offsets \[0, 16\]\)/],
    ['gap', stBytes({ a: t('F32', [4], [0, 16]), b: t('F32', [4], [20, 36]) }, f32(9)), /tensor "b" \(data_offsets \[20, 36\]\): expected data to begin at byte 16 \(contiguous tensors\), found 20/],
    ['not at 0', stBytes({ a: t('F64', [1], [4, 12]) }, f32(3)), /tensor "a" \(data_offsets \[4, 12\]\): expected data to begin at byte 0/],
    ['truncated data', stBytes({ a: t('F64', [2], [0, 16]) }, new Uint8Array(10)), /truncated data: tensor "a" \(data_offsets \[0, 16\]\) expected a data buffer of at least 16 bytes, found 10/],
    ['trailing bytes', stBytes({ a: t('F64', [2], [0, 16]) }, new Uint8Array(20)), /trailing bytes: expected a data buffer of 16 bytes \(the tensors' extent\), found 20/],
    ['metadata value', stBytes({ __metadata__: { k: 1 } }), /invalid __metadata__\["k"\]: expected a string, found 1/],
    ['metadata type', stBytes({ __metadata__: 'x' }), /invalid __metadata__: expected an object of strings, found "x"/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const f = file(name);
    fs.writeFileSync(f, bytes);
    assertFormatError(() => readSafetensors(f), f, pattern);
  }
});

test('NumPy reads files written here (header parsed with plain json + np.frombuffer)', { skip: numpySkip() }, () => {
  const tensors = { emb: randn(rng, 6, 5, 'float32'), bias: randn(rng, 1, 3, 'float32').data, w: randn(rng, 3, 4, 'float64'), none: randn(rng, 0, 2, 'float64') };
  const f = file();
  writeSafetensors(f, tensors, { model: 'vgg16' });
  const script = `
import json, sys, numpy as np
with open(sys.argv[1], 'rb') as f:
    n = int.from_bytes(f.read(8), 'little')
    h = json.loads(f.read(n))
    buf = f.read()
meta = h.pop('__metadata__', {})
out = {'n': n, 'metadata': meta, 'tensors': {}}
for name, t in h.items():
    b, e = t['data_offsets']
    a = np.frombuffer(buf[b:e], dtype={'F32': '<f4', 'F64': '<f8'}[t['dtype']]).reshape(t['shape'])
    out['tensors'][name] = {'shape': list(a.shape), 'hex': a.tobytes().hex()}
print(json.dumps(out))`;
  const seen = python(script, f) as { n: number; metadata: unknown; tensors: Record<string, unknown> };
  assert.equal(seen.n % 8, 0);
  assert.deepEqual(seen.metadata, { model: 'vgg16' });
  assert.deepEqual(
    seen.tensors,
    Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, { shape: shapeOf(t), hex: hex(dataOf(t)) }])),
  );
});

test('reads a safetensors file written by Python', { skip: numpySkip() }, () => {
  const f = file('py');
  const script = `
import json, sys, numpy as np
rng = np.random.default_rng(3)
arrays = {'b': rng.standard_normal((4, 3)), 'a': rng.standard_normal(5).astype('<f4')}
header, offset = {'__metadata__': {'format': 'pt'}}, 0
for name, a in arrays.items():
    header[name] = {'dtype': {'float64': 'F64', 'float32': 'F32'}[a.dtype.name], 'shape': list(a.shape), 'data_offsets': [offset, offset + a.nbytes]}
    offset += a.nbytes
h = json.dumps(header).encode()
with open(sys.argv[1], 'wb') as f:
    f.write(len(h).to_bytes(8, 'little')); f.write(h)
    for a in arrays.values(): f.write(a.tobytes())
print(json.dumps({k: a.tobytes().hex() for k, a in arrays.items()}))`;
  const expected = python(script, f) as Record<string, string>;
  const read = readSafetensors(f);
  assert.deepEqual(read.metadata, { format: 'pt' });
  assert.deepEqual(read.tensorAsMatrix('b').shape, [4, 3]);
  assert.deepEqual(read.tensorAsMatrix('a').shape, [1, 5]);
  assert.equal(read.tensors.get('b')!.dtype, 'float64');
  for (const [name, bytes] of Object.entries(expected)) assert.equal(hex(read.tensors.get(name)!.data), bytes);
});
