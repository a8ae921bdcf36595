// The macro benchmarks behind `embmap bench`: what a user of embmap waits for, on every backend
// this build and machine offer, beside NumPy and ml-matrix where they are installed:
//  - extraction: images/s through extract(), image files to .npy, on a ResNet-18-shaped CNN;
//  - fit: lstsq with intercept, N x 512 -> 512 float32 pairs (seconds; error vs NumPy float64);
//  - apply: one applyBatch of N rows and N rows in batches of 256 (vectors/s), one vector
//    through apply() (p50/p99 µs);
//  - cosine: all-pairs cosine with top-5 per query, 512-d (million scored pairs/s).
// Rounds interleave the contenders (this machine's speed drifts); each figure is the best round.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Matrix } from '../src/core/matrix';
import { Engine, type BackendInfo } from '../src/engine/engine';
import { LstsqEstimator } from '../src/estimators/lstsq';
import { makeRng } from '../src/evaluate/split';
import { extract } from '../src/extract/pipeline';
import { writeFileAtomic } from '../src/io/atomic';
import { readNpy, writeNpy } from '../src/io/npy';
import { LinearMap } from '../src/maps/linear-map';
import { convNet } from '../test/helpers/cnn';
import { cardFromOnnx } from '../src/models/load';
import { writeModel } from '../src/onnx/proto';
import { best, cleanEnv, percentiles, relErr, runNumpy, uniform } from './common';
import { benchImages, resnet18Like } from './extract-inputs';
import { describeMachine, type Machine } from './machine';
import { machineLines } from './report';

export interface MacroOptions {
  /** Smaller sizes and one round (seconds instead of minutes). */
  quick?: boolean;
  /** Backends to run (default: every available one). */
  backends?: string[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface Figures {
  fit_s?: number;
  fit_relerr?: number;
  apply_vps?: number;
  apply256_vps?: number;
  apply1_p50_us?: number;
  apply1_p99_us?: number;
  cosine_mpairs?: number;
}

export interface MacroResult {
  date: string;
  machine: Machine;
  backends: BackendInfo[];
  gpu: { backend: string | null; device: string };
  sizes: { fitRows: number; dim: number; applyRows: number; cosine: [number, number]; k: number; latencyCalls: number; rounds: number };
  extraction: Extraction | { unavailable: string };
  embmap: Record<string, Figures>;
  numpy: (Figures & { version: string; blas: string }) | { unavailable: string };
  /** `rows`: the batch its throughput was measured on. */
  mlMatrix: (Figures & { rows: number }) | { unavailable: string };
}

export interface Extraction {
  imagesPerSecond: number;
  images: number;
  source: string;
  model: string;
  provider: string;
  batch: number;
}

const D = 512, K = 5;

/**
 * images/s of extract() from image files to a .npy (decode workers, ONNX Runtime, checkpoints,
 * model load included), best of `rounds`.
 */
async function measureExtraction(count: number, rounds: number, log: (line: string) => void): Promise<Extraction> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-macro-extract-'));
  try {
    const modelFile = path.join(dir, 'resnet18like.onnx');
    writeModel(modelFile, convNet({ input: { size: [224, 224] }, layers: resnet18Like(), rng: makeRng(2020) }).model);
    const { dataset, source } = benchImages(count);
    const batch = 16;
    let bestRate = 0, provider = '';
    for (let r = 0; r < rounds; r++) {
      log(`  extraction round ${r + 1} of ${rounds}...`);
      const t = process.hrtime.bigint();
      // A bare ONNX file says nothing of its preprocessing: the ImageNet preset, read inside the timed region as before.
      const model = await cardFromOnnx(modelFile, { preset: 'imagenet' });
      const summary = await extract({ dataset, batch, workers: 1, restart: true, targets: [{ model, out: path.join(dir, 'emb.npy') }] });
      bestRate = Math.max(bestRate, summary.rows / (Number(process.hrtime.bigint() - t) / 1e9));
      provider = summary.models[0].provider;
    }
    return { imagesPerSecond: bestRate, images: dataset.items.length, source, model: 'ResNet-18-shaped CNN at 224×224, random weights (test/helpers/cnn.ts), 512-d embedding', provider, batch };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The GPU side: whether the cuda backend runs here, and if not, what is missing. */
function gpuStatus(backends: BackendInfo[]): MacroResult['gpu'] {
  const cuda = backends.find((b) => b.name === 'cuda');
  return { backend: cuda ? 'cuda' : null, device: cuda ? cuda.kernel : `none usable: ${Engine.cudaStatus().reason}` };
}

type MlMatrixModule = typeof import('ml-matrix');

function loadMlMatrix(): MlMatrixModule | string {
  try {
    return require('ml-matrix') as MlMatrixModule; // a devDependency: absent from installs
  } catch (err) {
    return `not installed (${(err as Error).message.split('\n')[0]})`;
  }
}

export async function runMacro(opts: MacroOptions = {}): Promise<MacroResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const quick = opts.quick ?? false;
  const available = Engine.available();
  const names = opts.backends ?? available.map((b) => b.name);
  const engines = names.map((n) => Engine.get(n));
  const sizes = {
    fitRows: quick ? 4000 : 20000,
    dim: D,
    applyRows: quick ? 8192 : 65536,
    cosine: (quick ? [1024, 4096] : [4096, 16384]) as [number, number],
    k: K,
    latencyCalls: quick ? 2000 : 20000,
    rounds: quick ? 1 : 2,
  };
  log(`embmap bench${quick ? ' --quick' : ''}: backends ${names.join(', ')}`);
  const X = uniform(sizes.fitRows, D);
  const Y = Engine.get().gemmSync(X, uniform(D, D), { bias: uniform(1, D).data });
  for (let i = 0; i < Y.data.length; i++) Y.data[i] += 0.1 * (Math.random() * 2 - 1);
  const Xa = uniform(sizes.applyRows, D);
  const W = uniform(D, D), b = uniform(1, D).data;
  const Qc = uniform(sizes.cosine[0], D), Gc = uniform(sizes.cosine[1], D);

  const LOWER: (keyof Figures)[] = ['fit_s', 'apply1_p50_us', 'apply1_p99_us'];
  /** The best of several rounds' figures, key by key. */
  const bestOf = (runs: Figures[]): Figures => {
    const out: Figures = {};
    for (const r of runs) {
      for (const [key, v] of Object.entries(r) as [keyof Figures, number][]) {
        const old = out[key];
        if (old === undefined || (LOWER.includes(key) ? v < old : v > old)) out[key] = v;
      }
    }
    return out;
  };
  const ours: Record<string, Figures[]> = {};
  // The last fit of each backend, and its error against NumPy's float64 solution.
  const fits: Record<string, Float64Array> = {};
  const fitErr: Record<string, number> = {};
  const runOurs = async () => {
    for (const e of engines) {
      log(`  embmap ${e.name}...`);
      const r: Figures = {};
      r.fit_s = await best(1, async () => {
        fits[e.name] = (await new LstsqEstimator({}, { engine: e }).fit(X, Y)).fitted.weight.data;
      });
      const map = LinearMap.create(W, b, {}, { engine: e });
      r.apply_vps = sizes.applyRows / (await best(1, () => map.applyBatch(Xa)));
      r.apply256_vps = sizes.applyRows / (await best(1, async () => {
        for (let i = 0; i < Xa.rows; i += 256) await map.applyBatch(Xa.rowSlice(i, Math.min(i + 256, Xa.rows)));
      }));
      const x = Xa.row(0);
      const lat = percentiles(() => map.apply(x), sizes.latencyCalls);
      r.apply1_p50_us = lat.p50;
      r.apply1_p99_us = lat.p99;
      r.cosine_mpairs = (sizes.cosine[0] * sizes.cosine[1]) / (await best(1, () => e.cosineTopK(Qc, Gc, { k: K }))) / 1e6;
      (ours[e.name] ??= []).push(r);
    }
  };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-macro-'));
  const numpyRuns: Figures[] = [];
  let numpyInfo: { version: string; blas: string } | { unavailable: string } | undefined;
  const runPython = () => {
    if (numpyInfo && 'unavailable' in numpyInfo) return;
    log('  numpy...');
    try {
      const n = runNumpy('macro', dir, cleanEnv()) as unknown as Figures & { numpy: string; blas: { library: string; kernel: string } };
      const { numpy: version, blas, ...figures } = n;
      numpyRuns.push(figures);
      numpyInfo = { version, blas: `${blas.library.split(' ')[0]} ${blas.kernel}` };
    } catch (err) {
      // python3 or numpy missing: say which (the last line of Python's traceback, or the spawn error).
      const lines = (err as Error).message.trim().split('\n');
      numpyInfo = { unavailable: lines[lines.length - 1] };
    }
  };
  try {
    for (const [name, m] of [['X', X], ['Y', Y], ['W', W], ['Q', Qc], ['G', Gc]] as const) writeNpy(path.join(dir, `${name}.npy`), m);
    writeNpy(path.join(dir, 'b.npy'), new Matrix(b, 1, D));
    writeFileAtomic(path.join(dir, 'macro.json'), [Buffer.from(JSON.stringify({ reps: 1, calls: sizes.latencyCalls, k: K }))]);
    for (let round = 0; round < sizes.rounds; round++) {
      log(`round ${round + 1} of ${sizes.rounds}`);
      if (round % 2 === 0) {
        await runOurs();
        runPython();
      } else {
        runPython();
        await runOurs();
      }
    }
    const ref = path.join(dir, 'Wfit64.npy');
    if (fs.existsSync(ref)) {
      const w64 = readNpy(ref).data;
      for (const [name, w] of Object.entries(fits)) fitErr[name] = relErr(w, w64);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const embmap = Object.fromEntries(Object.entries(ours).map(([name, runs]) => [name, { ...bestOf(runs), fit_relerr: fitErr[name] }]));
  const numpy: MacroResult['numpy'] = numpyInfo === undefined ? { unavailable: 'not run' } : 'unavailable' in numpyInfo ? numpyInfo : { ...bestOf(numpyRuns), ...numpyInfo };
  // ONNX Runtime ships binaries for some platforms only: a failure here is reported, not fatal.
  const extraction = await measureExtraction(quick ? 32 : 128, sizes.rounds, log).catch((err: Error) => ({ unavailable: err.message.split('\n')[0] }));

  // ml-matrix: apply only (its fit and all-pairs cosine at these sizes take minutes).
  const ml = loadMlMatrix();
  let mlMatrix: MacroResult['mlMatrix'];
  if (typeof ml === 'string') {
    mlMatrix = { unavailable: ml };
  } else {
    log('  ml-matrix...');
    const mW = new ml.Matrix(W.toArray()), mb = ml.Matrix.rowVector(Array.from(b));
    const rows = quick ? 256 : 1024;
    const mX = new ml.Matrix(Xa.rowSlice(0, rows).toArray());
    const t = await best(1, async () => mX.mmul(mW).addRowVector(mb));
    const mx = ml.Matrix.rowVector(Array.from(Xa.row(0)));
    const lat = percentiles(() => mx.mmul(mW).add(mb), Math.ceil(sizes.latencyCalls / 10));
    mlMatrix = { rows, apply_vps: rows / t, apply1_p50_us: lat.p50, apply1_p99_us: lat.p99 };
  }

  return {
    date: new Date().toISOString(),
    machine: describeMachine(),
    backends: available,
    gpu: gpuStatus(available),
    sizes,
    extraction,
    embmap,
    numpy,
    mlMatrix,
  };
}

const f = (v: number | undefined, digits = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');
const e = (v: number | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toExponential(1) : '—');
const k = (v: number | undefined) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');

export function renderMacro(r: MacroResult): string {
  const s = r.sizes;
  const rows: [string, Figures][] = Object.entries(r.embmap).map(([name, x]) => {
    const info = r.backends.find((b) => b.name === name);
    return [`embmap ${name}${info ? ` (${info.kernel}, ${info.threads} threads)` : ''}`, x];
  });
  if ('fit_s' in r.numpy) rows.push([`NumPy ${r.numpy.version} (${r.numpy.blas})`, r.numpy]);
  if (!('unavailable' in r.mlMatrix)) rows.push(['ml-matrix', r.mlMatrix]);
  const notes: string[] = [];
  if ('unavailable' in r.numpy) notes.push(`- NumPy: not measured: ${r.numpy.unavailable}`);
  if ('unavailable' in r.mlMatrix) notes.push(`- ml-matrix: not measured: ${r.mlMatrix.unavailable}`);
  else notes.push(`- ml-matrix: apply only (${r.mlMatrix.rows} rows for throughput); its fit and all-pairs cosine at these sizes take minutes`);
  return [
    `## embmap bench (${r.date.slice(0, 10)}${s.rounds === 1 ? ', --quick' : ''})`,
    '',
    ...machineLines(r.machine),
    `- backends: ${r.backends.map((b) => `${b.name} (${b.library}; kernel ${b.kernel}; ${b.threads} threads)`).join('; ')}`,
    `- GPU: ${r.gpu.backend ? `backend ${r.gpu.backend}` : 'cuda backend not available'}; device: ${r.gpu.device}`,
    `- command: \`embmap bench${s.rounds === 1 ? ' --quick' : ''}\` (${s.rounds} interleaved round(s), best of them)`,
    '',
    'unavailable' in r.extraction
      ? `Extraction: not measured: ${r.extraction.unavailable}.`
      : `Extraction: **${f(r.extraction.imagesPerSecond)} images/s** through \`extract()\` (files → decode → ONNX Runtime ${r.extraction.provider} → .npy, model load included; best of ${s.rounds}): ${r.extraction.model}; ${r.extraction.images} images from ${r.extraction.source}; batch ${r.extraction.batch}, 1 decode worker.`,
    '',
    `| contender | fit ${k(s.fitRows)}×${s.dim}→${s.dim} s | fit rel. error vs NumPy float64 | apply ${k(s.applyRows)} rows, vectors/s | apply in batches of 256, vectors/s | apply() one vector p50 µs | p99 µs | cosine top-${s.k} ${k(s.cosine[0])}×${k(s.cosine[1])}, M pairs/s |`,
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(([name, x]) => `| ${name} | ${f(x.fit_s, 2)} | ${e(x.fit_relerr)} | ${k(x.apply_vps)} | ${k(x.apply256_vps)} | ${f(x.apply1_p50_us)} | ${f(x.apply1_p99_us)} | ${f(x.cosine_mpairs, 0)} |`),
    '',
    ...notes,
    '',
  ].join('\n');
}
