// TensorFlow.js weights manifests: groups of weight specs whose values lie back to back in the
// group's shard files. Quantised weights (uint8/uint16: value = q * scale + min; float16) are
// decoded to float32; every size is checked so a truncated shard or a manifest that does not
// match its files is an error naming the file, never a model with shifted weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from '../io/binary';
import { realPathOf, resolveInside } from '../io/paths';
import { halfsToFloat } from './dequantize';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

export interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}

export interface Weight {
  shape: number[];
  data: Float32Array | Int32Array;
}

const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function checkGroups(file: string, groups: unknown): asserts groups is WeightGroup[] {
  const bad = (what: string): never => {
    throw new FileFormatError(file, `weights manifest: expected ${what}`);
  };
  if (!Array.isArray(groups)) bad('an array of {paths, weights} groups');
  (groups as unknown[]).forEach((g, i) => {
    const group = g as Partial<WeightGroup>;
    if (!group || !Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string')) bad(`group ${i} to have a "paths" array of file names`);
    if (!Array.isArray(group.weights)) bad(`group ${i} to have a "weights" array`);
    for (const w of group.weights!) {
      if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0) || typeof w.dtype !== 'string') {
        bad(`group ${i}: every weight to have a name, an integer shape and a dtype, received ${JSON.stringify(w).slice(0, 120)}`);
      }
    }
  });
}

/** Reads and decodes every weight of `groups`; shard paths are relative to `dir` and must stay inside it. `file` names the manifest in errors. */
export function readWeights(file: string, groups: unknown, dir: string): Map<string, Weight> {
  checkGroups(file, groups);
  const out = new Map<string, Weight>();
  groups.forEach((group, g) => {
    const shards = group.paths.map((p) => {
      const shard = resolveInside(dir, p);
      if (shard === undefined) {
        throw new FileFormatError(file, `weights group ${g}: expected shard paths inside the manifest's folder ${dir}, received ${JSON.stringify(p)}, which leads to ${realPathOf(path.resolve(dir, p))}`);
      }
      try {
        return fs.readFileSync(shard);
      } catch (err) {
        throw new FileFormatError(file, `weights group ${g}: cannot read shard ${shard}: ${(err as Error).message}`);
      }
    });
    const bytes = Buffer.concat(shards);
    const expected = group.weights.reduce((sum, w) => sum + size(file, w), 0);
    if (bytes.length !== expected) {
      const files = group.paths.map((p, i) => `${p} (${shards[i].length} bytes)`).join(' + ');
      throw new FileFormatError(file, `weights group ${g}: the manifest's ${group.weights.length} weights need ${expected} bytes, the shard files hold ${bytes.length}: ${files}${bytes.length < expected ? ' (truncated?)' : ''}`);
    }
    let offset = 0;
    for (const w of group.weights) {
      const n = size(file, w);
      // Copied so the typed arrays are aligned whatever the offset.
      out.set(w.name, { shape: w.shape, data: decode(w, bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + n)) });
      offset += n;
    }
  });
  return out;
}

function size(file: string, w: WeightSpec): number {
  const stored = w.quantization?.dtype ?? w.dtype;
  const bytes = STORED_BYTES[stored];
  if (bytes === undefined) throw new FileFormatError(file, `weight "${w.name}": dtype ${stored} is not supported (float32, int32, bool, uint8, uint16, float16)`);
  return bytes * w.shape.reduce((a, b) => a * b, 1);
}

function decode(w: WeightSpec, buf: ArrayBuffer): Float32Array | Int32Array {
  const q = w.quantization;
  let values: Float32Array | Int32Array;
  if (!q) values = w.dtype === 'int32' ? new Int32Array(buf) : w.dtype === 'bool' ? Int32Array.from(new Uint8Array(buf)) : new Float32Array(buf);
  else if (q.dtype === 'float16') values = halfsToFloat(new Uint16Array(buf));
  else {
    const ints = q.dtype === 'uint8' ? new Uint8Array(buf) : new Uint16Array(buf);
    const scale = q.scale ?? 1, min = q.min ?? 0;
    values = Float32Array.from(ints, (v) => v * scale + min);
  }
  return w.dtype === 'int32' && values instanceof Float32Array ? Int32Array.from(values, Math.round) : values;
}
