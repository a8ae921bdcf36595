// One cross-fit fold's kernels at issue 13's size (a 2048 x 2048 Cholesky, its 512-column solve,
// the 2048 x 2048 x 512 scoring product), float64 on cpu-blas, on the backend's two threads
// against one, interleaved over BENCH_ROUNDS rounds (default 5), medians. Shows why the fit's
// cross-fit runs far below the data pass's rate when the cores are shared. Writes the
// "fold-solve" section of bench/RESULTS.md.
import * as os from 'node:os';
import * as path from 'node:path';
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const P = 2048, Q = 512, ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const FLOPS = { cholesky: P ** 3 / 3, solve: 2 * P * P * Q, product: 2 * P * P * Q };

async function main(): Promise<void> {
  const engine = Engine.get('cpu-blas');
  const threads = engine.info().threads;
  const G = Matrix.zeros(P + 100, P, 'float64'), B = Matrix.zeros(P, Q, 'float64');
  let s = 1;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) - 0.5;
  G.data.forEach((_, i) => (G.data[i] = rnd()));
  B.data.forEach((_, i) => (B.data[i] = rnd()));
  const S = await engine.gemm(G, G, { transA: true });
  // The fold refits factor and solve in place (estimators/normal-equations.ts): so do these, on
  // copies refreshed outside the timed calls.
  const L = S.clone(), M = B.clone();
  const times: Record<string, Record<keyof typeof FLOPS, number[]>> = {};
  const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const t of [threads, 1]) {
        engine.setThreads(t);
        const row = (times[t] ??= { cholesky: [], solve: [], product: [] });
        L.data.set(S.data);
        M.data.set(B.data);
        let t0 = process.hrtime.bigint();
        await engine.cholesky(L, { inPlace: true });
        row.cholesky.push(sec(t0));
        t0 = process.hrtime.bigint();
        await engine.cholSolve(L, M, { inPlace: true });
        row.solve.push(sec(t0));
        t0 = process.hrtime.bigint();
        await engine.gemm(S, M);
        row.product.push(sec(t0));
      }
    }
  } finally {
    engine.setThreads(threads);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const cell = (v: number[], flops: number) => `${median(v).toFixed(2)} s (${(flops / median(v) / 1e9).toFixed(1)} GFLOP/s)`;
  const md = [
    `## One cross-fit fold's kernels, ${threads} threads against 1 (${new Date().toISOString().slice(0, 10)}, float64, cpu-blas)`,
    '',
    ...machineLines(describeMachine()),
    `- command: \`node dist/bench/fold-solve.bench.js\` (${ROUNDS} rounds, the thread counts interleaved in each; medians)`,
    `- load average while it ran: ${os.loadavg().map((v) => v.toFixed(1)).join(', ')} (1, 5, 15 min) on ${os.cpus().length} CPUs shared with other work`,
    '',
    '| threads | Cholesky 2048 | solve, 512 columns | product 2048 x 2048 x 512 | one fold |',
    '|---|---|---|---|---|',
    ...Object.entries(times).sort(([a], [b]) => Number(b) - Number(a)).map(([t, row]) =>
      `| ${t} | ${cell(row.cholesky, FLOPS.cholesky)} | ${cell(row.solve, FLOPS.solve)} | ${cell(row.product, FLOPS.product)} | ${(median(row.cholesky) + median(row.solve) + median(row.product)).toFixed(2)} s |`),
    '',
  ].join('\n');
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'fold-solve', md);
  process.stdout.write(md);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
