// One cross-fit fold's kernels at issue 13's size (a 2048 x 2048 Cholesky, its 512-column solve,
// the 2048 x 2048 x 512 scoring product), float64 on cpu-blas: one fold on all the backend's
// threads, one fold on one thread, and two folds at once, each limited to half the threads
// (Engine.withThreads: what the cross-fit does, evaluate/crossfit.ts), interleaved over
// BENCH_ROUNDS rounds (default 5), medians. Writes the "fold-solve" section of bench/RESULTS.md.
import * as os from 'node:os';
import * as path from 'node:path';
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const P = 2048, Q = 512, ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const FLOPS = { cholesky: P ** 3 / 3, solve: 2 * P * P * Q, product: 2 * P * P * Q };
type Kernel = keyof typeof FLOPS;

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
  // copies refreshed outside the timed calls; one set of copies per lane.
  const copies = [0, 1].map(() => ({ L: S.clone(), M: B.clone() }));
  const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
  // One fold's kernels on `e`, each timed.
  const fold = async (e: Engine, c: { L: Matrix<'float64'>; M: Matrix<'float64'> }) => {
    c.L.data.set(S.data);
    c.M.data.set(B.data);
    const t: Record<Kernel, number> = { cholesky: 0, solve: 0, product: 0 };
    let t0 = process.hrtime.bigint();
    await e.cholesky(c.L, { inPlace: true });
    t.cholesky = sec(t0);
    t0 = process.hrtime.bigint();
    await e.cholSolve(c.L, c.M, { inPlace: true });
    t.solve = sec(t0);
    t0 = process.hrtime.bigint();
    await e.gemm(S, c.M);
    t.product = sec(t0);
    return t;
  };
  const half = Math.max(1, Math.floor(threads / 2));
  const setups = [`one fold, ${threads} threads`, 'one fold, 1 thread', `two folds at once, ${half} thread${half > 1 ? 's' : ''} each`];
  const times: Record<string, { kernels: Record<Kernel, number[]>; perFold: number[] }> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, name] of setups.entries()) {
      const row = (times[name] ??= { kernels: { cholesky: [], solve: [], product: [] }, perFold: [] });
      const t0 = process.hrtime.bigint();
      const runs = i === 2 ? await Promise.all(copies.map((c) => fold(engine.withThreads(half), c))) : [await fold(i === 0 ? engine : engine.withThreads(1), copies[0])];
      row.perFold.push(sec(t0) / runs.length);
      for (const k of Object.keys(FLOPS) as Kernel[]) row.kernels[k].push(runs[0][k]);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const cell = (v: number[], flops: number) => `${median(v).toFixed(3)} s (${(flops / median(v) / 1e9).toFixed(1)} GFLOP/s)`;
  const md = [
    `## One cross-fit fold's kernels: one fold on ${threads} threads, on 1, and two at once (${new Date().toISOString().slice(0, 10)}, float64, cpu-blas)`,
    '',
    ...machineLines(describeMachine()),
    `- command: \`node dist/bench/fold-solve.bench.js\` (${ROUNDS} rounds, the setups interleaved in each; medians)`,
    `- load average while it ran: ${os.loadavg().map((v) => v.toFixed(1)).join(', ')} (1, 5, 15 min) on ${os.cpus().length} CPUs shared with other work`,
    '- kernels: each timed within its fold (two folds at once: the first lane\'s, while the other runs); per fold: wall time of the setup over the folds it did',
    '',
    '| setup | Cholesky 2048 | solve, 512 columns | product 2048 x 2048 x 512 | wall time per fold |',
    '|---|---|---|---|---|',
    ...setups.map((name) => {
      const { kernels: k, perFold } = times[name];
      return `| ${name} | ${cell(k.cholesky, FLOPS.cholesky)} | ${cell(k.solve, FLOPS.solve)} | ${cell(k.product, FLOPS.product)} | ${median(perFold).toFixed(3)} s |`;
    }),
    '',
  ].join('\n');
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'fold-solve', md);
  process.stdout.write(md);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
