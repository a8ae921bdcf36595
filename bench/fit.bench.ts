// Fit-from-files benchmark (issue: estimators). 50000 x 2048 -> 2048, float32 .npy files:
//  - embmap lstsq from the files (chunked reads + streaming statistics + Cholesky) against
//    NumPy loading the same files and solving the float64 normal equations, interleaved;
//  - ridge with lambda chosen by GCV over 25 values against one fixed-lambda ridge fit, both
//    from the same statistics pass and end to end.
// No intercept, so that both sides solve the same problem. Writes the "fit" section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../src/engine/engine';
import { LstsqEstimator } from '../src/estimators/lstsq';
import { RidgeEstimator } from '../src/estimators/ridge';
import { statsFromNpy } from '../src/estimators/streaming';
import { readNpy, writeNpy } from '../src/io/npy';
import { best, cleanEnv, relErr, REPO, runNumpy, uniform } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const N = Number(process.env.BENCH_N ?? 50000);
const P = 2048, Q = 2048;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-fit-'));
  const machine = describeMachine();
  const r: Record<string, number> = {};
  const numpy: Record<string, Record<string, unknown>> = {};
  try {
    console.error('generating data...');
    const X = uniform(N, P);
    const Y = Engine.get().gemmSync(X, uniform(P, Q));
    for (let i = 0; i < Y.data.length; i++) Y.data[i] += 0.1 * (Math.random() * 2 - 1);
    const xf = path.join(dir, 'X.npy'), yf = path.join(dir, 'Y.npy');
    writeNpy(xf, X);
    writeNpy(yf, Y);
    const env = cleanEnv();
    const keepMin = (k: string, v: number) => (r[k] = Math.min(r[k] ?? Infinity, v));
    let W: Float64Array | undefined;
    for (const round of [0, 1]) {
      console.error(`embmap round ${round + 1}...`);
      keepMin('lstsq_s', await best(1, async () => {
        const est = await new LstsqEstimator({ intercept: false }).fitStats(await statsFromNpy(xf, yf));
        W = est.fitted.weight.data;
      }));
      let statsTime = 0;
      const stats = await (async () => {
        const s0 = process.hrtime.bigint();
        const s = await statsFromNpy(xf, yf);
        statsTime = Number(process.hrtime.bigint() - s0) / 1e9;
        return s;
      })();
      keepMin('stats_s', statsTime);
      keepMin('ridge_fixed_solve_s', await best(1, () => new RidgeEstimator({ intercept: false, lambda: 10 }).fitStats(stats)));
      keepMin('ridge_gcv_solve_s', await best(1, () => new RidgeEstimator({ intercept: false, lambda: 'gcv' }).fitStats(stats)));
      const name = round === 0 ? 'default' : 'skylakex';
      console.error(`numpy (${name})...`);
      numpy[name] = runNumpy('fit', dir, round === 0 ? env : { ...env, OPENBLAS_CORETYPE: 'SkylakeX' });
    }
    r.lstsq_relerr = relErr(W!, readNpy(path.join(dir, 'W64.npy')).data);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const npBest = Math.min(...Object.values(numpy).map((x) => x.fit64_from_files_s as number));
  const fixed = r.stats_s + r.ridge_fixed_solve_s, gcv = r.stats_s + r.ridge_gcv_solve_s;
  const f2 = (v: number) => v.toFixed(2);
  const md = [
    `## Fit from files (${new Date().toISOString().slice(0, 10)}, ${N} x ${P} -> ${Q}, float32 .npy)`,
    '',
    ...machineLines(machine),
    '- command: `node dist/bench/fit.bench.js` (contenders interleaved; best of two rounds)',
    '',
    '| contender | seconds |',
    '|---|---|',
    `| embmap \`lstsq\` from the files (chunked reads, statistics, Cholesky) | ${f2(r.lstsq_s)} |`,
    ...Object.entries(numpy).map(([k, x]) => `| NumPy ${x.numpy} ${k} (${(x.blas as { kernel: string }).kernel}): load + float64 \`solve(X.T@X, X.T@Y)\` | ${f2(x.fit64_from_files_s as number)} |`),
    `| embmap statistics pass alone | ${f2(r.stats_s)} |`,
    `| ridge, fixed lambda, solve from statistics | ${f2(r.ridge_fixed_solve_s)} |`,
    `| ridge, lambda by GCV over 25 values, solve from statistics | ${f2(r.ridge_gcv_solve_s)} |`,
    '',
    `- lstsq from files: ${f2(r.lstsq_s)} s = **${f2(r.lstsq_s / npBest)}×** the faster NumPy (target ≤ 1.2×); relative error against NumPy's float64 solution ${r.lstsq_relerr.toExponential(1)}.`,
    `- ridge with automatic lambda end to end ${f2(gcv)} s against a single ridge fit ${f2(fixed)} s: **${f2(gcv / fixed)}×** (target ≤ 2×).`,
    '',
  ].join('\n');
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'fit', md);
  process.stdout.write(md);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
