// What workers leave in the shared folder, each file written atomically (temp + rename), so a file
// that exists is whole:
//   <shared>/run.json                    the run: its id, models, image count, shards (the coordinator's)
//   <shared>/shards/<index>.safetensors  a shard's rows of every output ("0", "1", ...) and, in the
//                                        metadata, the run id, its range and its skipped images
//   <shared>/stats/<src>--<tgt>/<index>.safetensors  a shard's sufficient statistics (stats-files.ts)
// A shard's statistics are written before its rows: the rows file is the shard's "done" mark.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import type { SkippedImage } from '../extract/checkpoint';
import type { ShardRange } from '../extract/plan';
import { FileFormatError } from '../io/binary';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { VERSION } from '../version';

export const shardName = (index: number) => `${String(index).padStart(6, '0')}.safetensors`;
export const shardsDir = (shared: string) => path.join(shared, 'shards');
export const shardFile = (shared: string, index: number) => path.join(shardsDir(shared), shardName(index));

export interface ShardRows {
  rows: number;
  /** Output k's rows x dims[k] values. */
  outputs: Float32Array[];
  skipped: SkippedImage[];
}

/** Writes a shard's rows of every output and its skipped images, atomically. */
export function writeShard(file: string, run: string, range: ShardRange, dims: readonly number[], shard: ShardRows): void {
  const tensors = new Map(shard.outputs.map((data, k) => [String(k), new Matrix(data, shard.rows, dims[k])]));
  writeSafetensors(file, tensors, {
    embmap: VERSION, run, shard: String(range.index), start: String(range.start), end: String(range.end),
    rows: String(shard.rows), skipped: JSON.stringify(shard.skipped),
  });
}

/**
 * Reads a shard written by writeShard, checking that it belongs to `run` and covers `range`; of the
 * outputs (sizes `dims`), only output `only` when given (`outputs` then holds just that one), none
 * when `only` is -1.
 */
export function readShard(file: string, run: string, range: ShardRange, dims: readonly number[], only?: number): ShardRows {
  const wanted = only === undefined ? dims.map((_, k) => k) : only < 0 ? [] : [only];
  const st = readSafetensors(file, { names: wanted.map(String) });
  const m = st.metadata;
  const bad = (what: string): never => {
    throw new FileFormatError(file, `${what}; remove it and run again to recompute the shard`);
  };
  if (m.run !== run) bad(`expected a shard of run ${run}, found one of run ${m.run ?? '(none)'}`);
  if (m.start !== String(range.start) || m.end !== String(range.end)) bad(`expected images [${range.start}, ${range.end}), found [${m.start}, ${m.end})`);
  const rows = Number(m.rows);
  const outputs = wanted.map((k) => {
    const t = st.tensors.get(String(k));
    if (!t || t.dtype !== 'float32' || t.shape.join() !== `${rows},${dims[k]}`) bad(`output ${k}: expected ${rows} x ${dims[k]} float32 values`);
    return t!.data as Float32Array;
  });
  let skipped: SkippedImage[] = [];
  try {
    skipped = JSON.parse(m.skipped);
  } catch {
    bad('expected the skipped images as JSON in the metadata');
  }
  if (!Array.isArray(skipped) || rows + skipped.length !== range.end - range.start) bad(`expected rows + skipped = ${range.end - range.start} images, found ${rows} + ${skipped.length}`);
  return { rows, outputs, skipped };
}

/** The indices of the shard files present (done shards, whatever their run: readShard checks). */
export function shardsPresent(shared: string): Set<number> {
  const done = new Set<number>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(shardsDir(shared));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const name of names) {
    const m = /^(\d{6,})\.safetensors$/.exec(name);
    if (m) done.add(Number(m[1]));
  }
  return done;
}

/** Fails naming `dir` when this process cannot create files in it (created if absent). */
export function assertWritable(dir: string, what: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.write-probe.${process.pid}.tmp`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (err) {
    throw new Error(`${dir}: expected a ${what} this process can write, ${(err as Error).message}`);
  }
}
