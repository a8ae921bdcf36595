// Ridge toward a prior with a bias solves the uncentred problem of rows [x, 1] (ridge.ts): what that
// costs in conditioning and accuracy on real embeddings (ReLU features: means as large as the
// spread). For each size and lambda (multiples of the centred problem's mean eigenvalue, the
// default grid's unit), the library's map against the equivalent centred form
// (Sxx + lambda I + g m m^T) M = Sxy + lambda M0 + g m (meanY - b0)^T, g = n lambda / (n + lambda),
// solved independently here (float64 Cholesky of the centred matrix), and the condition numbers
// of the two matrices.
// Usage: node dist/bench/affine-prior.bench.js --source A.npy --target B.npy [--sizes 231,2130,10000]
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { SufficientStats } from '../src/engine/stats';
import { RidgeEstimator } from '../src/estimators/ridge';
import { affineMoments } from '../src/estimators/normal-equations';
import { readNpy } from '../src/io/npy';
import { flag, relErr } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';
import * as path from 'node:path';

async function main(): Promise<void> {
  const source = flag('--source'), target = flag('--target');
  if (!source || !target) throw new TypeError('--source, --target: expected two .npy files of paired embeddings, received nothing');
  const engine = Engine.get();
  const XA = readNpy(source).astype('float64'), YA = readNpy(target).astype('float64');
  const sizes = (flag('--sizes') ?? '231,2130,10000').split(',').map(Number).filter((n) => n <= XA.rows);
  const p = XA.cols, q = YA.cols;
  // A prior of the right shape: small random weight, unit bias (its values do not change the conditioning).
  const M0 = Matrix.zeros(p, q, 'float64'), b0 = new Float64Array(q);
  let s = 1;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  for (let i = 0; i < M0.data.length; i++) M0.data[i] = 0.02 * rnd();
  for (let j = 0; j < q; j++) b0[j] = rnd();
  const rows: string[] = [];
  const cond = async (S: Matrix<'float64'>) => {
    const w = (await engine.eigh(S)).values.data;
    return w[w.length - 1] / Math.max(w[0], Number.MIN_VALUE);
  };
  for (const n of sizes) {
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    const X = XA.takeRows(idx), Y = YA.takeRows(idx);
    const stats = await new SufficientStats(p, q, { engine }).update(X, Y);
    const mx = stats.meanX(), my = stats.meanY();
    const c = stats.centred();
    let trace = 0, mm = 0;
    for (let i = 0; i < p; i++) trace += c.xx.data[i * p + i];
    for (const v of mx) mm += v * v;
    const unit = trace / p;
    const aug = affineMoments(stats).xx;
    for (const rel of [1e-6, 1e-3, 1, 1e3]) {
      const lambda = rel * unit, g = (n * lambda) / (n + lambda);
      const est = await new RidgeEstimator({ lambda, prior: { weight: M0, bias: b0, provenance: {} } }, { engine }).fitStats(stats);
      const K = c.xx.clone(), R = c.xy.clone();
      for (let i = 0; i < p; i++) {
        K.data[i * p + i] += lambda;
        for (let k = 0; k < p; k++) K.data[i * p + k] += g * mx[i] * mx[k];
        for (let j = 0; j < q; j++) R.data[i * q + j] += lambda * M0.data[i * q + j] + g * mx[i] * (my[j] - b0[j]);
      }
      const G = aug.clone();
      for (let i = 0; i <= p; i++) G.data[i * (p + 1) + i] += lambda;
      const [condG, condK] = [await cond(G), await cond(K)];
      const ref = await engine.cholSolve(await engine.cholesky(K), R);
      const diff = relErr(est.fitted.weight.data, ref.data);
      rows.push(`| ${n} | ${p} | ${mm.toPrecision(3)} / ${(trace / n).toPrecision(3)} | ${rel.toExponential(0)} | ${condG.toPrecision(2)} | ${condK.toPrecision(2)} | ${diff.toExponential(1)} |`);
      process.stderr.write(rows[rows.length - 1] + '\n');
    }
  }
  const md = [
    '## Ridge toward a prior with a bias: rows [x, 1] against the centred form',
    '',
    ...machineLines(describeMachine()),
    `- \`node dist/bench/affine-prior.bench.js ${process.argv.slice(2).join(' ')}\`: the first n rows, a prior of that shape; λ in units of the centred problem's mean eigenvalue (the default grid spans 1e-6 .. 1e6 of it). cond: largest over smallest eigenvalue of [x, 1]'s XᵀX + λI (what ridge.ts solves) and of the centred Sxx + λI + g m mᵀ (the equivalent form); difference: relative Frobenius difference of the two weights.`,
    '',
    '| n | p | \\|mean x\\|² / trace(Sxx)/n | λ / mean eigenvalue | cond, rows [x, 1] | cond, centred form | weight difference |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  process.stdout.write(md + '\n');
  updateResultsFile(path.join(__dirname, '..', '..', 'bench', 'RESULTS.md'), 'affine-prior', md);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
