// Fit accuracy and time (issue 13). A cond-1e4 float32 case with ReLU-like means, 50,000 x 2048
// -> 512 in .npy files (made by numpy_bench.py gen), through the whole `embmap fit` command:
//  - the default (float64 products about a shift, every pair, 5-fold cross-fit diagnostics),
//  - without diagnostics, and the opt-in float32 fast mode,
//  - the fit of the code before issue 13 (float32 block products, uncentred), when BASE_CLI
//    points at that build's dist/src/cli/main.js,
//  - NumPy's centred float64 normal-equation solve on arrays already in memory,
// interleaved (A, B, C, ..., A, B, C, ...), medians of BENCH_ROUNDS rounds (default 3); errors
// against the float64 QR answer on the same values. Then, in this process, where the
// diagnostics' time goes: the data pass dealing 1 and 5 folds, and the cross-fit's solves.
// Then the same accuracy on real embeddings (BENCH_REAL: pairs of embedding files with the same
// ids, e.g. the LFW faces of `embmap demo`). Writes the "fit" section of bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fitFromFolds, FoldDealer, splitOptions } from '../src/estimators/fit-map';
import { loadEmbeddings, pairById } from '../src/io/embeddings';
import { readNpy, writeNpy } from '../src/io/npy';
import { LinearMap } from '../src/maps/linear-map';
import { cleanEnv, relErr, REPO, runNumpy } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const N = Number(process.env.BENCH_N ?? 50000);
const P = 2048, Q = 512, COND = 1e4;
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const BASE = process.env.BASE_CLI;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Contender {
  name: string;
  cli: string;
  args: string[];
}

const CONTENDERS: Contender[] = [
  { name: '`embmap fit` (default: float64 products, every pair, 5-fold cross-fit scored until 10,000 pairs: 1 fold here)', cli: CLI, args: [] },
  { name: '`embmap fit --score-pairs 50000` (every fold scored)', cli: CLI, args: ['--score-pairs', '50000'] },
  { name: '`embmap fit --no-diagnostics`', cli: CLI, args: ['--no-diagnostics'] },
  { name: '`embmap fit --no-diagnostics --precision float32` (opt-in fast mode)', cli: CLI, args: ['--no-diagnostics', '--precision', 'float32'] },
  ...(BASE ? [{ name: 'before issue 13: `embmap fit --test-fraction 0` (float32 blocks, uncentred sums)', cli: BASE, args: ['--test-fraction', '0'] }] : []),
];

/** Runs one fit command; returns its wall time and the written map's weight and bias. */
function fit(c: Contender, x: string, y: string, out: string): { s: number; W: Float32Array | Float64Array; b: Float32Array | Float64Array } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [c.cli, 'fit', '--source', x, '--target', y, '--method', 'lstsq', '--out', out, ...c.args], { encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${c.name}: ${r.stderr}`);
  const map = LinearMap.load(out);
  return { s, W: map.weight().data, b: map.bias() };
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const env = cleanEnv();
  // BENCH_DIR keeps the generated files and their reference between runs (they take minutes).
  const keep = process.env.BENCH_DIR;
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-fit-'));
  const x = path.join(dir, 'X.npy'), y = path.join(dir, 'Y.npy'), out = path.join(dir, 'map.safetensors');
  const times: Record<string, number[]> = {}, err: Record<string, string> = {};
  const numpyRuns: Record<string, unknown>[] = [];
  let phases: string[] = [];
  let cond = 0;
  const real: string[] = [];
  try {
    if (!fs.existsSync(path.join(dir, 'cond.json'))) {
      console.error('generating data and the float64 reference...');
      fs.mkdirSync(dir, { recursive: true });
      runNumpy('gen', dir, env, String(N), String(P), String(Q), String(COND));
      fs.writeFileSync(path.join(dir, 'cond.json'), JSON.stringify(runNumpy('reference', dir, env).cond));
    }
    cond = JSON.parse(fs.readFileSync(path.join(dir, 'cond.json'), 'utf8'));
    for (const pair of (process.env.BENCH_REAL ?? '').split(',').filter(Boolean)) real.push(realCase(pair, env));
    const Wref = readNpy(path.join(dir, 'W_ref.npy')).data, bref = readNpy(path.join(dir, 'b_ref.npy')).data;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of CONTENDERS) {
        console.error(`round ${round}: ${c.name}...`);
        const r = fit(c, x, y, out);
        (times[c.name] ??= []).push(r.s);
        err[c.name] = `${relErr(r.W, Wref).toExponential(1)} / ${relErr(r.b, bref).toExponential(1)}`;
      }
      console.error(`round ${round}: numpy...`);
      numpyRuns.push(runNumpy('fit', dir, env));
    }
    phases = await wherePhasesGo(x, y);
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  const f2 = (v: number) => v.toFixed(2);
  const time = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const spread = (name: string) => `${f2(median(times[name]))} (${times[name].map(f2).join(', ')})`;
  const [full, every, bare, fast] = CONTENDERS.map((c) => time[c.name]);
  const base = BASE ? time[CONTENDERS[4].name] : undefined;
  const npS = median(numpyRuns.map((r) => r.fit64_in_memory_s as number));
  const numpy = numpyRuns[0];
  const md = [
    `## Fit accuracy and time (${new Date().toISOString().slice(0, 10)}, ${N} x ${P} -> ${Q} float32 .npy, cond(centred X) ${cond.toExponential(1)}, column means 2..5)`,
    '',
    ...machineLines(machine),
    `- command: \`BASE_CLI=<pre-issue-13 build>/dist/src/cli/main.js BENCH_REAL=<A.npy>:<B.npy>,... node dist/bench/fit.bench.js\` (contenders interleaved A, B, C, ... in each of ${ROUNDS} rounds; seconds are the median, each round's in brackets; each \`embmap fit\` a fresh process reading the files)`,
    `- load average while it ran: ${os.loadavg().map((v) => v.toFixed(1)).join(', ')} (1, 5, 15 min) on ${os.cpus().length} CPUs shared with other work: compare times within this table only`,
    '- error: relative Frobenius error of the written (float32) map\'s weight / bias against the float64 QR solution of the centred problem on the same values',
    '',
    '| contender | seconds | error weight / bias |',
    '|---|---|---|',
    ...CONTENDERS.map((c) => `| ${c.name} | ${spread(c.name)} | ${err[c.name]} |`),
    `| NumPy ${numpy.numpy} (${(numpy.blas as { library: string }).library}): centred float64 \`solve(Xc.T@Xc, Xc.T@Yc)\`, arrays in memory | ${f2(npS)} (${numpyRuns.map((r) => f2(r.fit64_in_memory_s as number)).join(', ')}) | ${(numpy.fit64_relerr as number).toExponential(1)} (float64 weights) |`,
    '',
    `- the accurate fit, whole command, no diagnostics: ${f2(bare)} s = **${f2(bare / npS)}×** NumPy's float64 solve on arrays in memory (target ≤ 1.0×)` +
      (base ? `, **${f2(bare / base)}×** the fit before issue 13 (target ≤ 2×)` : '') + '.',
    `- default diagnostics (5-fold cross-fit on the statistics scoring 1 fold, 10,000 pairs; cosine/CKA on 2,000 held-out rows): ${f2(full)} s = **${f2(full / bare)}×** the fit without them (target ≤ 1.15×); scoring every fold ${f2(every)} s = **${f2(every / bare)}×**.`,
    `- the opt-in float32 mode: ${f2(fast)} s, ${f2(fast / bare)}× the accurate fit's time; on this cond-1e4 case its float32 products cannot resolve X^T X (cond 1e8): the solve finds it rank-deficient, warns, and returns the minimum-norm map of the eigenvalues it resolves (the error above).`,
    '',
    '### Where the diagnostics\' time goes (library calls in this process, float32 arrays in memory, interleaved, medians)',
    '',
    ...phases,
    ...(real.length ? ['', '### Real embeddings (lstsq, every pair, float32 map against the float64 QR answer)', '', '| source -> target | pairs x dims | cond(centred X) | default | `--precision float32` |' + (BASE ? ' before issue 13 |' : ''), '|---|---|---|---|---|' + (BASE ? '---|' : ''), ...real] : []),
    '',
  ].join('\n');
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'fit', md);
  process.stdout.write(md);
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * The default fit's extra work, timed piece by piece: the data pass dealing the pairs into folds
 * (the scored one and one set for the rest) against one set, and the fit from the dealt
 * statistics: the map's solve alone, against the same solve beside the cross-fit (the scored
 * folds' refits on the fold statistics, each scored from its fold's statistics, plus cosine/CKA
 * on the kept rows).
 */
async function wherePhasesGo(x: string, y: string): Promise<string[]> {
  const X = readNpy(x), Y = readNpy(y);
  const setups = ['none', 'crossfit'] as const;
  const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
  const deal: Record<string, number[]> = { none: [], crossfit: [] }, fit: Record<string, number[]> = { none: [], crossfit: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of setups) {
      console.error(`round ${round}: library phases, ${v}...`);
      const { params, protocol } = splitOptions({ method: 'lstsq', validation: v });
      let t0 = process.hrtime.bigint();
      const dealer = new FoldDealer(X.rows, X.cols, Y.cols, params, protocol);
      await dealer.add(X, Y, 0);
      deal[v].push(sec(t0));
      t0 = process.hrtime.bigint();
      await fitFromFolds('lstsq', params, dealer, protocol);
      fit[v].push(sec(t0));
    }
  }
  const f2 = (v: number[]) => `${median(v).toFixed(2)} s (${v.map((t) => t.toFixed(2)).join(', ')})`;
  const m = (v: number[]) => median(v);
  const extra = m(deal.crossfit) - m(deal.none) + m(fit.crossfit) - m(fit.none), alone = m(deal.none) + m(fit.none);
  return [
    `- data pass (float64 products), all pairs into one set of statistics: ${f2(deal.none)}; dealt into 5 folds, 1 scored and one set of statistics for the rest (each set's rows taken in place): ${f2(deal.crossfit)}`,
    `- the map's solve from the statistics (centre, Cholesky, solve): ${f2(fit.none)}`,
    `- the same solve beside the cross-fit (merge; the scored fold's refit, a 2048 x 2048 Cholesky and a 512-column solve, ~7 GFLOP, scored from the fold's statistics, half a 2048 x 2048 x 512 product; the two solves at once on a thread each; then cosine and CKA on the kept rows): ${f2(fit.crossfit)}`,
    `- so the diagnostics add ${extra.toFixed(2)} s to a fit whose library part takes ${alone.toFixed(2)} s here (${((extra / alone) * 100).toFixed(0)}%)`,
  ];
}

/** One real pair "A.npy:B.npy": paired by id, the reference, and each contender's error (no timing). */
function realCase(pair: string, env: NodeJS.ProcessEnv): string {
  const [a, b] = pair.split(':');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-real-'));
  try {
    const p = pairById(loadEmbeddings(a), loadEmbeddings(b));
    const x = path.join(dir, 'X.npy'), y = path.join(dir, 'Y.npy'), out = path.join(dir, 'map.safetensors');
    writeNpy(x, p.source);
    writeNpy(y, p.target);
    const cond = runNumpy('reference', dir, env).cond as number;
    const Wref = readNpy(path.join(dir, 'W_ref.npy')).data;
    const e = (c: Contender) => relErr(fit(c, x, y, out).W, Wref).toExponential(1);
    const cols = [CONTENDERS[2], CONTENDERS[3], ...(BASE ? [CONTENDERS[4]] : [])].map(e);
    const name = (f: string) => path.basename(f, '.npy');
    return `| ${name(a)} -> ${name(b)} | ${p.source.rows} x ${p.source.cols} -> ${p.target.cols} | ${cond.toExponential(1)} | ${cols.join(' | ')} |`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
