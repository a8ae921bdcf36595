// Sufficient statistics of one shard in a .safetensors file (every array as a float64 tensor, the
// sizes and the shard in the metadata), and a folder of them merged into one: a map is then fitted
// from statistics alone, without reading any embedding again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SufficientStats } from '../engine/stats';
import { FileFormatError } from '../io/binary';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { VERSION } from '../version';

export interface StatsMeta {
  run: string;
  shard: number;
  /** Shards in the run: a merge checks every one is there. */
  shards: number;
  source: string;
  target: string;
}

// The moments are about the shifts (see SufficientStats): both are stored, so shards merge exactly.
const ARRAYS = ['n', 'shiftX', 'shiftY', 'sumX', 'sumY', 'sqY', 'xtx', 'xty'] as const;

export function writeStats(file: string, stats: SufficientStats, meta: StatsMeta): void {
  const tensors: Record<string, Float64Array> = {};
  for (const name of ARRAYS) tensors[name] = stats[name];
  if (stats.yty) tensors.yty = stats.yty;
  writeSafetensors(file, tensors, {
    embmap: VERSION, run: meta.run, shard: String(meta.shard), shards: String(meta.shards), source: meta.source, target: meta.target,
    p: String(stats.p), q: String(stats.q), precision: stats.precision, inputDType: stats.inputDType ?? '',
  });
}

export function readStats(file: string): { stats: SufficientStats; meta: StatsMeta } {
  const st = readSafetensors(file);
  const m = st.metadata;
  const p = Number(m.p), q = Number(m.q), shard = Number(m.shard), shards = Number(m.shards);
  if (!(p >= 1 && q >= 0 && shard >= 0 && shards > shard) || !m.run) throw new FileFormatError(file, 'expected embmap shard statistics (p, q, run, shard, shards in the metadata)');
  const stats = new SufficientStats(p, q, { yty: st.tensors.has('yty'), precision: m.precision === 'float32' ? 'float32' : 'float64' });
  for (const name of [...ARRAYS, ...(stats.yty ? (['yty'] as const) : [])]) {
    const t = st.tensors.get(name);
    const target = stats[name]!;
    if (!t || t.dtype !== 'float64' || t.data.length !== target.length) throw new FileFormatError(file, `${name}: expected ${target.length} float64 values`);
    target.set(t.data);
  }
  if (m.inputDType === 'float32' || m.inputDType === 'float64') stats.inputDType = m.inputDType;
  return { stats, meta: { run: m.run, shard, shards, source: m.source, target: m.target } };
}

/**
 * Merges every shard's statistics in `dir` (one run's, every shard present, each once) into one;
 * the merge is a sum, so the order of the shards does not matter beyond float64 rounding.
 */
export function mergeStatsDir(dir: string): { stats: SufficientStats; meta: Omit<StatsMeta, 'shard'> } {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();
  } catch (err) {
    throw new Error(`${dir}: expected a folder of shard statistics, ${(err as Error).message}`);
  }
  if (names.length === 0) throw new RangeError(`${dir}: expected shard statistics (.safetensors), found none`);
  let merged: SufficientStats | undefined;
  let first: StatsMeta | undefined;
  const seen = new Set<number>();
  for (const name of names) {
    const file = path.join(dir, name);
    const { stats, meta } = readStats(file);
    first ??= meta;
    if (meta.run !== first.run || meta.shards !== first.shards) throw new FileFormatError(file, `expected statistics of run ${first.run} (${first.shards} shards), found run ${meta.run} (${meta.shards} shards)`);
    if (seen.has(meta.shard)) throw new FileFormatError(file, `shard ${meta.shard} is already in ${dir}`);
    seen.add(meta.shard);
    merged = merged ? merged.merge(stats) : stats;
  }
  if (seen.size !== first!.shards) {
    const missing = Array.from({ length: first!.shards }, (_, i) => i).filter((i) => !seen.has(i));
    throw new RangeError(`${dir}: expected the statistics of all ${first!.shards} shards of run ${first!.run}, missing shard(s) ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`);
  }
  const { shard: _shard, ...meta } = first!;
  return { stats: merged!, meta };
}
