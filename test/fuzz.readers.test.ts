// Fuzzing the readers of untrusted files: thousands of mutations of valid .npy, .safetensors,
// model-card and TF.js weight-manifest files (bit flips, interesting bytes, cuts, inserted bytes,
// numbers in text made huge, negative or fractional). Each must be read, or refused with an error
// that names the file; no crash, no hang (each reader has a time budget), no internal error
// (TypeError from a missing field, an invalid typed-array length, ...).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Matrix } from '../src/core/matrix';
import { readWeights } from '../src/importers/tfjs-weights';
import { readNpy, writeNpy } from '../src/io/npy';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';
import { loadCard } from '../src/models/load';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';

const rng = makeRng('fuzz.readers');
const dir = tempDir();
const int = (n: number) => Math.floor(rng() * n);
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x22, 0x5b, 0x7b, 0x2d, 0x2e];
const NUMBERS = ['-1', '0', '1e308', '99999999999999999999', '4294967296', '2.5', 'NaN', '-0', '9007199254740993', '""', 'null', '[]'];

/** One random mutation of `seed` (text-aware when `text`: numbers replaced by odd ones). */
function mutate(seed: Buffer, text: boolean): Buffer {
  const b = Buffer.from(seed);
  switch (int(text ? 6 : 5)) {
    case 0: // bit flips
      for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] ^= 1 << int(8);
      return b;
    case 1: // interesting bytes
      for (let k = 1 + int(3); k > 0; k--) b[int(b.length)] = INTERESTING[int(INTERESTING.length)];
      return b;
    case 2: // cut
      return b.subarray(0, int(b.length));
    case 3: { // inserted random bytes
      const at = int(b.length);
      return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))), b.subarray(at)]);
    }
    case 4: { // a span duplicated
      const at = int(b.length), len = int(64);
      return Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
    }
    default: { // a number in the text replaced
      const s = b.toString('latin1');
      const spots = [...s.matchAll(/-?\d+(\.\d+)?/g)];
      if (spots.length === 0) return b;
      const m = spots[int(spots.length)];
      return Buffer.from(s.slice(0, m.index) + NUMBERS[int(NUMBERS.length)] + s.slice(m.index! + m[0].length), 'latin1');
    }
  }
}

/**
 * Runs `read` on up to `count` mutations of `seed` within `budgetMs`; every failure must be an Error
 * naming `file` and not one of JavaScript's own (TypeError/RangeError from inside the reader).
 */
function fuzz(name: string, seed: Buffer, file: string, read: () => void, opts: { text?: boolean; count?: number; budgetMs?: number } = {}): void {
  const count = opts.count ?? 2500, budget = opts.budgetMs ?? 15_000;
  const t0 = Date.now();
  let n = 0, refused = 0;
  for (; n < count && Date.now() - t0 < budget; n++) {
    const input = mutate(seed, opts.text ?? false);
    fs.writeFileSync(file, input);
    try {
      read();
    } catch (err) {
      refused++;
      const e = err as Error;
      const replay = `input (base64): ${input.toString('base64').slice(0, 400)}`;
      assert.ok(e instanceof Error, `${name}: threw a non-Error ${String(err)}; ${replay}`);
      assert.ok(e.message.includes(file), `${name}: the error does not name the file: ${e.message}; ${replay}`);
      assert.doesNotMatch(e.message, /Invalid typed array length|Cannot read prop|is not a function|is not iterable|Maximum call stack|Array buffer allocation/, `${name}: an internal error: ${e.message}; ${replay}`);
    }
  }
  console.log(`# ${name}: ${n} mutated inputs in ${Date.now() - t0} ms, ${refused} refused with a clear error, ${n - refused} read`);
  assert.ok(n >= Math.min(count, 1000), `${name}: only ${n} inputs within the ${budget} ms budget`);
}

test('.npy reader', { timeout: 60_000 }, () => {
  const seed = path.join(dir, 'seed.npy');
  writeNpy(seed, new Matrix(Float32Array.from({ length: 12 }, () => rng()), 3, 4));
  const file = path.join(dir, 'fuzz.npy');
  fuzz('npy', fs.readFileSync(seed), file, () => readNpy(file));
  // Header text mutated as text too (shape, descr, fortran_order).
  fuzz('npy header', fs.readFileSync(seed), file, () => readNpy(file), { text: true });
});

test('.safetensors reader', { timeout: 60_000 }, () => {
  const seed = path.join(dir, 'seed.safetensors');
  writeSafetensors(seed, { a: new Matrix(Float32Array.from({ length: 6 }, () => rng()), 2, 3), b: Float64Array.of(1, 2) }, { note: 'x' });
  const file = path.join(dir, 'fuzz.safetensors');
  fuzz('safetensors', fs.readFileSync(seed), file, () => readSafetensors(file), { text: true });
});

test('model card reader', { timeout: 60_000 }, () => {
  fs.writeFileSync(path.join(dir, 'm.onnx'), '');
  const card = {
    id: 'm', onnx: 'm.onnx',
    input: { name: 'in', size: [8, 8], layout: 'NHWC', channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'crop', crop: 0.875, cropCentre: [0.5, 0.5] },
    embedding: { tensor: 'e', dim: 4 }, logits: { tensor: 'l', classes: 10, labelOffset: 1 },
  };
  const file = path.join(dir, 'fuzz.card.json');
  fuzz('model card', Buffer.from(JSON.stringify(card, null, 1)), file, () => loadCard(file), { text: true });
});

test('TF.js weights manifest reader', { timeout: 60_000 }, () => {
  const pkg = path.join(dir, 'pkg');
  fs.mkdirSync(pkg);
  const w = Float32Array.from({ length: 6 }, () => rng());
  fs.writeFileSync(path.join(pkg, 'g1.bin'), Buffer.concat([Buffer.from(w.buffer), Buffer.from([3, 250]), Buffer.from(Uint16Array.of(15360, 49152).buffer)]));
  const manifest = [{
    paths: ['g1.bin'],
    weights: [
      { name: 'w', shape: [2, 3], dtype: 'float32' },
      { name: 'q', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
      { name: 'h', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
    ],
  }];
  const file = path.join(pkg, 'fuzz-manifest.json');
  assert.equal(readWeights(file, manifest, pkg).size, 3);
  fuzz('tfjs manifest', Buffer.from(JSON.stringify(manifest)), file, () => {
    let groups: unknown;
    try {
      groups = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return; // not JSON: the importers refuse it before readWeights (tested in import.tfjs.test)
    }
    readWeights(file, groups, pkg);
  }, { text: true });
});
