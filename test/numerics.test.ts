// Numerically hard, real-shaped fits shared by every backend, against NumPy's float64 answer on
// the same (float32 or float64) data: condition numbers 1e2..1e6 with large ReLU-like means,
// duplicated and constant columns, fewer pairs than dimensions, many more pairs than dimensions.
// The reference is the intercept convention of docs/MAPS.md: centre X and Y, take the
// minimum-norm least-squares (or fixed-lambda ridge) solution of the centred problem, and
// b = mean(Y) - mean(X) M. Fresh random data every run (the seed is in the test name).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Engine, type BackendName } from '../src/engine/engine';
import { pairedEstimator } from '../src/estimators';
import { readNpy } from '../src/io/npy';
import { numpySkip, python, tempDir } from './helpers/io';
import { relErr } from './helpers/reference';

const GENERATE = `
import json, sys
import numpy as np
d, n, p, q, cond, dtype, kind, seed, lam = sys.argv[1:]
n, p, q, cond, seed, lam = int(n), int(p), int(q), float(cond), int(seed), float(lam)
rng = np.random.default_rng(seed)
G = rng.standard_normal((n, p))
G -= G.mean(0)
Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
X = (G * np.logspace(0, -np.log10(cond), p)) @ Q.T
X += rng.uniform(2, 5, p)  # large means next to the spread, as after a ReLU
if kind == 'duplicate':
    X[:, -1] = X[:, 0]
if kind == 'constant':
    X[:, 3] = 7.0
X = X.astype(dtype)
M = rng.standard_normal((p, q))
Y = (X.astype(np.float64) @ M + 0.5 + 0.01 * rng.standard_normal((n, q))).astype(dtype)
np.save(d + '/X.npy', X)
np.save(d + '/Y.npy', Y)
X, Y = X.astype(np.float64), Y.astype(np.float64)
Xc, Yc = X - X.mean(0), Y - Y.mean(0)
if lam == 0:
    W = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
else:
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(p), Xc.T @ Yc)
np.save(d + '/W.npy', W)
np.save(d + '/b.npy', (Y.mean(0) - X.mean(0) @ W)[None, :])
s = np.linalg.svd(Xc, compute_uv=False)
print(json.dumps({'cond': float(s[0] / s[s > s[0] * max(n, p) * 2.2e-16][-1])}))
`;

interface Case {
  name: string;
  n: number;
  p: number;
  q: number;
  cond: number;
  dtype: 'float32' | 'float64';
  kind?: 'duplicate' | 'constant';
  lambda?: number;
  /** Relative error allowed against the float64 reference (issue 13's targets). */
  tol: number;
}

const CASES: Case[] = [
  { name: 'cond 1e2', n: 4000, p: 64, q: 16, cond: 1e2, dtype: 'float32', tol: 1e-6 },
  { name: 'cond 1e4', n: 4000, p: 64, q: 16, cond: 1e4, dtype: 'float32', tol: 1e-6 },
  { name: 'cond 1e6', n: 4000, p: 64, q: 16, cond: 1e6, dtype: 'float32', tol: 1e-4 },
  { name: 'cond 1e4, float64 input', n: 4000, p: 64, q: 16, cond: 1e4, dtype: 'float64', tol: 1e-6 },
  { name: 'cond 1e4, ridge lambda 1e-3', n: 4000, p: 64, q: 16, cond: 1e4, dtype: 'float32', lambda: 1e-3, tol: 1e-6 },
  { name: 'duplicated column (rank-deficient: minimum norm)', n: 3000, p: 48, q: 8, cond: 1e2, dtype: 'float32', kind: 'duplicate', tol: 1e-6 },
  { name: 'constant column (rank-deficient: minimum norm)', n: 3000, p: 48, q: 8, cond: 1e2, dtype: 'float32', kind: 'constant', tol: 1e-6 },
  { name: 'n < p (minimum norm)', n: 40, p: 64, q: 8, cond: 10, dtype: 'float32', tol: 1e-6 },
  { name: 'n >> p', n: 60000, p: 16, q: 4, cond: 1e3, dtype: 'float32', tol: 1e-6 },
];

const BACKENDS: BackendName[] = ['portable', 'cpu-blas', 'cuda'];
const available = new Set(Engine.available().map((b) => b.name));
const skipNumpy = numpySkip();
const seed = Math.floor(Math.random() * 2 ** 31);

for (const backend of BACKENDS) {
  const why = skipNumpy ?? (available.has(backend) ? undefined : `backend '${backend}' is not available here (${backend === 'cuda' ? Engine.cudaStatus().reason : 'not built'})`);
  describe(`numerically hard fits on ${backend} (seed ${seed})`, { skip: why }, () => {
    const engine = why ? undefined : Engine.get(backend);
    CASES.forEach((c, i) => {
      test(`${c.name}: within ${c.tol} of NumPy's float64 solution`, async () => {
        const dir = tempDir();
        const info = python(GENERATE, dir, String(c.n), String(c.p), String(c.q), String(c.cond), c.dtype, c.kind ?? 'none', String(seed + i), String(c.lambda ?? 0)) as { cond: number };
        const X = readNpy(path.join(dir, 'X.npy')), Y = readNpy(path.join(dir, 'Y.npy'));
        const W = readNpy(path.join(dir, 'W.npy')), b = readNpy(path.join(dir, 'b.npy'));
        const est = c.lambda === undefined ? pairedEstimator('lstsq', {}, { engine }) : pairedEstimator('ridge', { lambda: c.lambda }, { engine });
        const f = (await est.fit(X, Y)).fitted;
        const eW = relErr(f.weight.data, W.data), eb = relErr(f.bias, b.data);
        assert.ok(eW <= c.tol && eb <= c.tol, `cond(Xc) ${info.cond.toExponential(2)}: weight error ${eW.toExponential(2)}, bias error ${eb.toExponential(2)} > ${c.tol}`);
        if (c.kind || c.n < c.p) assert.equal(f.info.rankDeficient, true, 'rank-deficient data must be flagged');
      });
    });
  });
}
