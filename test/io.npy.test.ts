import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { openNpy, readNpy, writeNpy } from '../src/io';
import { makeRng, randn } from './helpers/random';
import { assertFormatError, hex, numpySkip, python, tempDir, tempFiles } from './helpers/io';

const dir = tempDir();
const rng = makeRng('io.npy');
let counter = 0;
const file = (name = 'a') => path.join(dir, `${name}-${counter++}.npy`);

/** A .npy file built by hand: magic, version, header length, the header (string: latin1, or utf8 for 3.0), data. */
function npyBytes(major: number, header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), minor = 0): Uint8Array {
  const text = typeof header === 'string' ? Buffer.from(header, major === 3 ? 'utf8' : 'latin1') : header;
  const lengthSize = major === 1 ? 2 : 4;
  const prefix = Buffer.alloc(8 + lengthSize);
  prefix.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, minor]);
  if (major === 1) prefix.writeUInt16LE(text.length, 8);
  else prefix.writeUInt32LE(text.length, 8);
  return Buffer.concat([prefix, text, data]);
}

const dict = (descr: string, shape: string, fortran = 'False') =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

function writeRaw(bytes: Uint8Array, name = 'raw'): string {
  const f = file(name.replace(/\W+/g, '-'));
  fs.writeFileSync(f, bytes);
  return f;
}

test('round trips float32 and float64 matrices of odd shapes, with NumPy-style aligned headers', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    for (const [rows, cols] of [[0, 5], [1, 1], [7, 3], [13, 17], [4, 0]]) {
      const m = randn(rng, rows, cols, dtype);
      const f = file();
      writeNpy(f, m);
      const back = readNpy(f);
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.shape, [rows, cols]);
      assert.equal(hex(back.data), hex(m.data));
      const bytes = fs.readFileSync(f);
      assert.equal(bytes[6], 1, 'format version 1.0');
      const dataOffset = 10 + bytes.readUInt16LE(8);
      assert.equal(dataOffset % 64, 0);
      assert.equal(bytes[dataOffset - 1], 0x0a, "header ends with '\\n'");
      assert.equal(bytes.length, dataOffset + m.data.byteLength);
    }
  }
});

test('a typed array is written as 1-D and any 1-D array reads back as a 1 x n matrix', () => {
  for (const data of [Float64Array.of(1.5, -2, 3e-300, 4, 5), new Float32Array(0)]) {
    const f = file();
    writeNpy(f, data);
    const header = fs.readFileSync(f).subarray(10, 80).toString('latin1');
    assert.match(header, new RegExp(`'shape': \\(${data.length},\\)`));
    const reader = openNpy(f);
    assert.deepEqual(reader.shape, [data.length]);
    reader.close();
    const m = readNpy(f);
    assert.deepEqual(m.shape, [1, data.length]);
    assert.equal(hex(m.data), hex(data));
  }
});

test('writes only the rows of a view that shares a larger buffer, and overwrites an existing file', () => {
  const m = randn(rng, 10, 3, 'float32');
  const f = file();
  writeNpy(f, randn(rng, 2, 2, 'float64'));
  writeNpy(f, m.rowSlice(2, 5));
  assert.equal(hex(readNpy(f).data), hex(m.rowSlice(2, 5).data));
  assert.deepEqual(tempFiles(dir), []);
});

test('reads hand-written version 1.0, 2.0 and 3.0 headers', () => {
  const m = randn(rng, 3, 4, 'float64');
  const data = new Uint8Array(m.data.buffer);
  for (const major of [1, 2, 3]) {
    const got = readNpy(writeRaw(npyBytes(major, dict('<f8', '(3, 4)'), data)));
    assert.deepEqual(got.shape, [3, 4]);
    assert.equal(hex(got.data), hex(m.data));
  }
});

test('parses header dicts NumPy would accept: double quotes, any key order, no trailing comma or newline, 2L', () => {
  const m = randn(rng, 2, 3, 'float32');
  const header = '{"shape": (2L, 3L), "fortran_order": False, "descr": "<f4"}   ';
  const got = readNpy(writeRaw(npyBytes(1, header, new Uint8Array(m.data.buffer))));
  assert.deepEqual(got.shape, [2, 3]);
  assert.equal(hex(got.data), hex(m.data));
});

test('openNpy reads row ranges on demand and validates them', () => {
  const m = randn(rng, 10, 3, 'float32');
  const f = file();
  writeNpy(f, m);
  const reader = openNpy(f);
  assert.deepEqual([reader.dtype, reader.rows, reader.cols], ['float32', 10, 3]);
  for (const [start, end] of [[2, 5], [0, 10], [10, 10], [9, 10]]) {
    const part = reader.readRows(start, end);
    assert.deepEqual(part.shape, [end - start, 3]);
    assert.equal(hex(part.data), hex(m.rowSlice(start, end).data));
  }
  assert.throws(() => reader.readRows(5, 11), /end: expected an integer in \[5, 10\], received number 11/);
  assert.throws(() => reader.readRows(3, 2), RangeError);
  assert.throws(() => reader.readRows(0.5, 2), TypeError);
  reader.close();
  reader.close();
  assert.throws(() => reader.readRows(0, 1), new RegExp(`${f}: readRows: expected an open reader`));
});

test('rejects corrupt and unsupported files with messages naming the file, the expectation and the finding', () => {
  const f4 = (n: number) => new Uint8Array(new Float32Array(n).buffer);
  const cases: [string, Uint8Array, RegExp][] = [
    ['bad magic', Buffer.from('PK\x03\x04 this is a zip file'), /not a \.npy file: expected the magic string "\\x93NUMPY", found "PK\\x03\\x04 t"/],
    ['empty file', new Uint8Array(0), /found an empty file/],
    ['truncated prefix', npyBytes(1, '').subarray(0, 7), /truncated header: expected at least 10 bytes .*found 7/],
    ['truncated header', npyBytes(1, dict('<f4', '(3, 4)')).subarray(0, 30), /truncated header: expected 60 header bytes after offset 10, found 20/],
    ['truncated data', npyBytes(1, dict('<f4', '(3, 4)'), f4(10)), /truncated data: expected 48 data bytes for shape \(3, 4\) '<f4', found 40/],
    ['trailing data', npyBytes(1, dict('<f4', '(3, 4)'), f4(13)), /trailing bytes after the data: expected 48 data bytes .*found 52/],
    ['fortran_order not a bool', npyBytes(1, dict('<f4', '(3, 4)', 'None'), f4(12)), /invalid fortran_order: expected True or False, found None/],
    ['big-endian', npyBytes(1, dict('>f8', '(2,)'), new Uint8Array(16)), /unsupported dtype: expected '<f4' \(float32\) or '<f8' \(float64\), found '>f8' \(big-endian/],
    ['int32', npyBytes(1, dict('<i4', '(2,)'), new Uint8Array(8)), /unsupported dtype: .*found '<i4'/],
    ['float16', npyBytes(1, dict('<f2', '(2,)'), new Uint8Array(4)), /unsupported dtype: .*found '<f2'/],
    ['structured', npyBytes(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }"), /unsupported dtype: .*found \(\('x', '<f4'\),\)/],
    ['version 4.0', npyBytes(2, dict('<f4', '(2,)')).map((b, i) => (i === 6 ? 4 : b)), /unsupported \.npy format version: expected 1\.0, 2\.0 or 3\.0, found 4\.0/],
    ['version 1.1', npyBytes(1, dict('<f4', '(2,)'), new Uint8Array(8), 1), /found 1\.1/],
    ['3-D', npyBytes(1, dict('<f4', '(2, 3, 4)'), f4(24)), /unsupported shape: expected a 1-D or 2-D array, found shape \(2, 3, 4\)/],
    ['0-D', npyBytes(1, dict('<f4', '()'), f4(1)), /expected a 1-D or 2-D array, found shape \(\)/],
    ['negative dim', npyBytes(1, dict('<f4', '(-1, 3)')), /invalid shape: expected a tuple of non-negative integers, found \(-1, 3\)/],
    ['shape not a tuple', npyBytes(1, dict('<f4', '(3)')), /invalid shape: .*found 3/],
    ['malformed dict', npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4}"), /invalid header dict .*: at offset 55: expected ',' or '\)', found "}"/],
    ['misplaced quote', npyBytes(1, "{'descr: '<f4'}"), /invalid header dict .*at offset 10: expected ':', found "<f4'}"/],
    ['unterminated string', npyBytes(1, "{'descr': '<f4}"), /invalid header dict .*at offset 15: expected closing ', found end of input/],
    ['missing key', npyBytes(1, "{'descr': '<f4', 'shape': (2,)}"), /invalid header: expected the keys 'descr', 'fortran_order', 'shape', found 'descr', 'shape'/],
    ['extra key', npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"), /found 'descr', 'fortran_order', 'shape', 'x'/],
    ['not a dict', npyBytes(1, '[1, 2]'), /invalid header: expected a dict, found "\[1, 2\]"/],
    ['3.0 not UTF-8', npyBytes(3, Buffer.from(dict('<f4', '(2,)') + '\xff', 'latin1'), f4(2)), /invalid header: expected UTF-8 text/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const f = writeRaw(bytes, name);
    assertFormatError(() => readNpy(f), f, pattern);
    assertFormatError(() => openNpy(f), f, pattern);
  }
});

test('the 3.0 header is UTF-8: the same bytes as latin1 in 1.0 are a parse error, not a decoding error', () => {
  const f = writeRaw(npyBytes(1, dict('<f4', '(2,)') + '\xff', new Uint8Array(8)));
  assertFormatError(() => readNpy(f), f, /invalid header dict .*expected end of input, found "ÿ"/);
});

test('writeNpy rejects bad arguments before touching the disk', () => {
  assert.throws(() => writeNpy(file(), [[1, 2]] as never), /array: expected a Matrix, Float32Array or Float64Array, received Array\(1\)/);
  assert.throws(() => writeNpy('', new Float32Array(1)), /path: expected a non-empty path string, received string ""/);
  assert.throws(() => readNpy(path.join(dir, 'missing.npy')), /ENOENT/);
});

test('NumPy reads files written here', { skip: numpySkip() }, () => {
  const files: Record<string, Matrix | Float32Array | Float64Array> = {
    [file('f4')]: randn(rng, 5, 7, 'float32'),
    [file('f8')]: randn(rng, 6, 1, 'float64'),
    [file('empty')]: randn(rng, 0, 3, 'float32'),
    [file('vec')]: randn(rng, 1, 9, 'float64').data,
  };
  for (const [f, array] of Object.entries(files)) writeNpy(f, array);
  const script = `
import json, sys, numpy as np
from numpy.lib import format
out = {}
for fn in sys.argv[1:]:
    with open(fn, 'rb') as f:
        version = format.read_magic(f)
    a = np.load(fn)
    out[fn] = {'version': list(version), 'dtype': a.dtype.str, 'shape': list(a.shape), 'hex': a.tobytes().hex()}
print(json.dumps(out))`;
  const seen = python(script, ...Object.keys(files)) as Record<string, { version: number[]; dtype: string; shape: number[]; hex: string }>;
  for (const [f, array] of Object.entries(files)) {
    const data = array instanceof Matrix ? array.data : array;
    assert.deepEqual(seen[f], {
      version: [1, 0],
      dtype: data instanceof Float32Array ? '<f4' : '<f8',
      shape: array instanceof Matrix ? [array.rows, array.cols] : [array.length],
      hex: hex(data),
    });
  }
});

test('reads files NumPy writes (np.save and write_array versions 1.0, 2.0, 3.0) and rejects what it cannot map', { skip: numpySkip() }, () => {
  const script = `
import json, sys, numpy as np
from numpy.lib import format
d = sys.argv[1]
rng = np.random.default_rng(7)
cases = {'f4': rng.standard_normal((5, 7)).astype('<f4'), 'f8': rng.standard_normal((3, 11)) * 1e-300,
         'vec': rng.standard_normal(9).astype('<f4'), 'empty': np.zeros((0, 4))}
out = {}
for name, a in cases.items():
    for v in (None, (1, 0), (2, 0), (3, 0)):
        fn = f"{d}/np-{name}-{'save' if v is None else v[0]}.npy"
        if v is None:
            np.save(fn, a)
        else:
            with open(fn, 'wb') as f:
                format.write_array(f, a, version=v)
        out[fn] = {'shape': list(a.shape), 'dtype': a.dtype.str, 'hex': a.tobytes().hex()}
np.save(f'{d}/np-big.npy', rng.standard_normal((3, 4)).astype('>f8'))
np.save(f'{d}/np-int.npy', np.arange(6, dtype='<i4').reshape(2, 3))
print(json.dumps(out))`;
  const written = python(script, dir) as Record<string, { shape: number[]; dtype: string; hex: string }>;
  assert.equal(Object.keys(written).length, 16);
  for (const [f, { shape, dtype, hex: bytes }] of Object.entries(written)) {
    const m = readNpy(f);
    assert.equal(m.dtype, dtype === '<f4' ? 'float32' : 'float64', f);
    assert.deepEqual(m.shape, shape.length === 1 ? [1, shape[0]] : shape, f);
    assert.equal(hex(m.data), bytes, f);
  }
  assertFormatError(() => readNpy(path.join(dir, 'np-big.npy')), path.join(dir, 'np-big.npy'), /found '>f8' \(big-endian/);
  assertFormatError(() => readNpy(path.join(dir, 'np-int.npy')), path.join(dir, 'np-int.npy'), /found '<i4'/);
});

test('reads Fortran-order files NumPy writes (np.save(f, X.T)) as the same matrix, whole and by row range', { skip: numpySkip() }, () => {
  // Odd sizes beyond one 32 x 32 transpose tile; vectors and empty arrays, whose two orders are the same bytes.
  const shapes = [[37, 70], [70, 37], [1, 9], [9, 1], [0, 5], [5, 0], [6]];
  const script = `
import json, sys, numpy as np
d, shapes = sys.argv[1], json.loads(sys.argv[2])
rng = np.random.default_rng(11)
out = {}
for i, shape in enumerate(shapes):
    for dt in ('<f4', '<f8'):
        x = rng.standard_normal(shape[::-1]).astype(dt)
        fn = f'{d}/np-T-{i}-{dt[1:]}.npy'
        np.save(fn, x.T)
        out[fn] = {'shape': list(x.T.shape), 'fortran': bool(np.isfortran(x.T)), 'hex': np.ascontiguousarray(x.T).tobytes().hex()}
print(json.dumps(out))`;
  const written = python(script, dir, JSON.stringify(shapes)) as Record<string, { shape: number[]; fortran: boolean; hex: string }>;
  assert.ok(Object.values(written).some((w) => w.fortran), 'NumPy wrote some files in Fortran order');
  for (const [f, { shape, hex: bytes }] of Object.entries(written)) {
    const header = fs.readFileSync(f).subarray(10, 128).toString('latin1');
    if (shape.length === 2 && shape[0] > 1 && shape[1] > 1) assert.match(header, /'fortran_order': True/, f);
    const m = readNpy(f);
    assert.deepEqual(m.shape, shape.length === 1 ? [1, shape[0]] : shape, f);
    assert.equal(hex(m.data), bytes, f);
    // Row ranges (what streaming fits read) match the same rows of the whole matrix.
    const reader = openNpy(f);
    try {
      for (const [start, end] of [[0, reader.rows], [Math.floor(reader.rows / 3), reader.rows - 1], [reader.rows, reader.rows]]) {
        if (end < start) continue;
        const part = reader.readRows(start, end);
        assert.deepEqual(part.shape, [end - start, reader.cols], f);
        assert.equal(hex(part.data), hex(m.data.subarray(start * m.cols, end * m.cols)), `${f} rows ${start}..${end}`);
      }
    } finally {
      reader.close();
    }
  }
});
