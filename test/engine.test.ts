// Every engine operation against a float64 reference on fresh random inputs, on every backend
// this build offers, in float32 and float64, through both the sync and the async path.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { Matrix, type DType } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';
import { SufficientStats } from '../src/engine/stats';
import { makeRng, randn } from './helpers/random';
import { EPS, frob, matmul, relErr, solve, toF64, transpose, type M64 } from './helpers/reference';

const rng = makeRng('engine.test');
const dtypes: DType[] = ['float32', 'float64'];

function spd(n: number, dtype: DType): Matrix {
  const a = randn(rng, n + 3, n, 'float64');
  const g = matmul(transpose(toF64(a)), toF64(a));
  for (let i = 0; i < n; i++) g.data[i * n + i] += n;
  return new Matrix(Float64Array.from(g.data), n, n).astype(dtype);
}

for (const info of Engine.available()) {
  const engine = Engine.get(info.name);
  describe(`engine ${info.name} (${info.kernel})`, () => {
    for (const dtype of dtypes) {
      const tol = (k: number) => 20 * EPS[dtype] * Math.sqrt(k + 1);

      test(`gemm ${dtype}: all transposes, bias, sync and async`, async () => {
        for (const [m, k, n] of [[1, 512, 512], [37, 65, 129], [300, 17, 3], [0, 5, 4], [5, 0, 3]]) {
          for (const ta of [false, true]) {
            for (const tb of [false, true]) {
              const A = ta ? randn(rng, k, m, dtype) : randn(rng, m, k, dtype);
              const B = tb ? randn(rng, n, k, dtype) : randn(rng, k, n, dtype);
              const bias = randn(rng, 1, n, dtype).data;
              const ref = matmul(ta ? transpose(toF64(A)) : toF64(A), tb ? transpose(toF64(B)) : toF64(B));
              for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) ref.data[i * n + j] += bias[j];
              const sync = engine.gemmSync(A, B, { transA: ta, transB: tb, bias });
              const asyn = await engine.gemm(A, B, { transA: ta, transB: tb, bias });
              assert.deepEqual(sync.shape, [m, n]);
              assert.ok(relErr(sync.data, ref.data) <= tol(k), `sync ${m}x${k}x${n} ta=${ta} tb=${tb}: ${relErr(sync.data, ref.data)}`);
              assert.ok(relErr(asyn.data, ref.data) <= tol(k), `async ${m}x${k}x${n} ta=${ta} tb=${tb}`);
            }
          }
        }
      });

      test(`cholesky and cholSolve ${dtype}`, async () => {
        const n = 67;
        const A = spd(n, dtype);
        const B = randn(rng, n, 5, dtype);
        const L = await engine.cholesky(A);
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(L.get(i, j), 0);
        const llt = matmul(toF64(L), transpose(toF64(L)));
        assert.ok(relErr(llt.data, toF64(A).data) < tol(n));
        const X = engine.cholSolveSync(L, B);
        const ref = solve(toF64(A), toF64(B));
        assert.ok(relErr(X.data, ref.data) < 1e3 * EPS[dtype], `solve error ${relErr(X.data, ref.data)}`);
        const indefinite = A.clone();
        indefinite.set(3, 3, -1);
        assert.throws(() => engine.choleskySync(indefinite), /A: expected a symmetric positive definite matrix.*order 4/);
        // In place: the same answers, written into the inputs.
        const A2 = A.clone(), B2 = B.clone();
        const L2 = await engine.cholesky(A2, { inPlace: true });
        assert.equal(L2, A2);
        assert.deepEqual(L2.data, L.data);
        const X2 = await engine.cholSolve(L2, B2, { inPlace: true });
        assert.equal(X2, B2);
        assert.deepEqual(X2.data, X.data);
        assert.notDeepEqual(B.data, X.data); // without inPlace the input stays
      });

      test(`lstsq ${dtype}: well-posed, rank-deficient and under-determined give the minimum-norm answer`, async () => {
        const A = randn(rng, 90, 12, dtype), B = randn(rng, 90, 3, dtype);
        const { x, rank, rankDeficient } = await engine.lstsq(A, B);
        const At = transpose(toF64(A));
        const ref = solve(matmul(At, toF64(A)), matmul(At, toF64(B)));
        assert.equal(rank, 12);
        assert.equal(rankDeficient, false);
        assert.ok(relErr(x.data, ref.data) < 1e3 * EPS[dtype], `lstsq error ${relErr(x.data, ref.data)}`);

        // Duplicate a column: the minimum-norm answer splits its weight equally.
        const D = Matrix.zeros(90, 13, dtype);
        for (let i = 0; i < 90; i++) {
          for (let j = 0; j < 12; j++) D.set(i, j, A.get(i, j));
          D.set(i, 12, A.get(i, 0));
        }
        const dup = engine.lstsqSync(D, B);
        assert.equal(dup.rank, 12);
        assert.equal(dup.rankDeficient, true);
        for (let c = 0; c < 3; c++) {
          assert.ok(Math.abs(dup.x.get(0, c) - dup.x.get(12, c)) < 1e3 * EPS[dtype], 'equal split');
          assert.ok(Math.abs(dup.x.get(0, c) + dup.x.get(12, c) - ref.data[c]) < 1e3 * EPS[dtype]);
        }

        // Fewer rows than columns: x = A^T (A A^T)^-1 b.
        const W = randn(rng, 6, 20, dtype), b = randn(rng, 6, 2, dtype);
        const under = await engine.lstsq(W, b);
        const W64 = toF64(W);
        const mn = matmul(transpose(W64), solve(matmul(W64, transpose(W64)), toF64(b)));
        assert.equal(under.rank, 6);
        assert.equal(under.rankDeficient, false);
        assert.ok(relErr(under.x.data, mn.data) < 1e3 * EPS[dtype], `min-norm error ${relErr(under.x.data, mn.data)}`);
      });

      test(`eigh ${dtype}: A v = w v, orthonormal, ascending`, async () => {
        const n = 40;
        const A = spd(n, dtype);
        const { values, vectors } = await engine.eigh(A);
        const A64 = toF64(A);
        const scale = frob(A64.data);
        for (let i = 0; i < n; i++) {
          if (i > 0) assert.ok(values.data[i] >= values.data[i - 1]);
          const v: M64 = { rows: n, cols: 1, data: Float64Array.from(vectors.row(i)) };
          const av = matmul(A64, v);
          for (let r = 0; r < n; r++) av.data[r] -= values.data[i] * v.data[r];
          assert.ok(frob(av.data) < 100 * EPS[dtype] * scale, `residual ${frob(av.data)}`);
        }
        const vvt = matmul(toF64(vectors), transpose(toF64(vectors)));
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.ok(Math.abs(vvt.data[i * n + j] - (i === j ? 1 : 0)) < 100 * EPS[dtype]);
      });

      test(`svd ${dtype}: tall and wide reconstruct, orthonormal factors, descending`, async () => {
        for (const [m, n] of [[50, 13], [9, 31]]) {
          const A = randn(rng, m, n, dtype);
          const { U, S, Vt } = await engine.svd(A);
          const r = Math.min(m, n);
          const US = toF64(U);
          for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) US.data[i * r + j] *= S.data[j];
          assert.ok(relErr(matmul(US, toF64(Vt)).data, toF64(A).data) < 100 * EPS[dtype]);
          for (let j = 1; j < r; j++) assert.ok(S.data[j] <= S.data[j - 1]);
          const utu = matmul(transpose(toF64(U)), toF64(U));
          for (let i = 0; i < r; i++) assert.ok(Math.abs(utu.data[i * r + i] - 1) < 100 * EPS[dtype]);
        }
      });

      test(`normalizeRows ${dtype}: unit rows, zero rows stay zero`, () => {
        const A = randn(rng, 10, 7, dtype);
        A.row(4).fill(0);
        const N = engine.normalizeRowsSync(A);
        for (let i = 0; i < 10; i++) {
          const norm = frob(N.row(i));
          assert.ok(i === 4 ? norm === 0 : Math.abs(norm - 1) < 10 * EPS[dtype]);
        }
        engine.normalizeRowsSync(A, { inPlace: true });
        assert.deepEqual(A.data, N.data);
      });

      test(`cosineTopK ${dtype}: blocked top-k and histogram match brute force`, async () => {
        const d = 24;
        const Q = randn(rng, 700, d, dtype), G = randn(rng, 4500, d, dtype); // spans several blocks
        const k = 5, bins = 20;
        const res = await engine.cosineTopK(Q, G, { k, histogram: { lo: -1, hi: 1, bins } });
        const nq = toF64(Q), ng = toF64(G);
        const norms = (m: M64) => Array.from({ length: m.rows }, (_, i) => frob(m.data.subarray(i * d, (i + 1) * d)));
        const qn = norms(nq), gn = norms(ng);
        const counts = new Float64Array(bins);
        for (let i = 0; i < Q.rows; i += 1) {
          const scores: [number, number][] = [];
          for (let j = 0; j < G.rows; j++) {
            let s = 0;
            for (let c = 0; c < d; c++) s += nq.data[i * d + c] * ng.data[j * d + c];
            s /= qn[i] * gn[j];
            scores.push([s, j]);
            counts[Math.min(bins - 1, Math.max(0, Math.floor(((s + 1) / 2) * bins)))]++;
          }
          scores.sort((a, b) => b[0] - a[0]);
          for (let r = 0; r < k; r++) {
            assert.ok(Math.abs(res.scores.get(i, r) - scores[r][0]) < 100 * EPS[dtype]);
            if (scores[r][0] - scores[r + 1][0] > 1e-4 && (r === 0 || scores[r - 1][0] - scores[r][0] > 1e-4)) {
              assert.equal(res.indices[i * k + r], scores[r][1]);
            }
          }
        }
        const total = res.counts!.reduce((a, b) => a + b, 0);
        assert.equal(total, Q.rows * G.rows);
        // Scores within rounding of a bin edge may land either side: compare with slack.
        assert.ok(relErr(res.counts!, counts) < 1e-3);
      });

      test(`cosineTopK ${dtype} on a set against itself skips self-pairs and counts each pair once`, () => {
        const X = randn(rng, 300, 8, dtype);
        const res = engine.cosineTopKSync(X, null, { k: 3, histogram: { lo: -1, hi: 1, bins: 4 } });
        for (let i = 0; i < X.rows; i++) for (let r = 0; r < 3; r++) assert.notEqual(res.indices[i * 3 + r], i);
        assert.equal(res.counts!.reduce((a, b) => a + b, 0), (300 * 299) / 2);
        const pad = engine.cosineTopKSync(X.rowSlice(0, 2), null, { k: 3 });
        assert.deepEqual(Array.from(pad.indices), [1, -1, -1, 0, -1, -1]);
        assert.equal(pad.scores.get(0, 1), -Infinity);
      });

      test(`streaming statistics ${dtype}: chunks and merged shards equal one pass and the float64 reference`, async () => {
        const p = 19, q = 7, N = 9000; // several row blocks
        const X = randn(rng, N, p, dtype), Y = randn(rng, N, q, dtype);
        for (let i = 0; i < X.data.length; i++) X.data[i] += 30; // large means: centring must not cancel
        const one = await new SufficientStats(p, q, { yty: true, engine }).update(X, Y);
        const a = new SufficientStats(p, q, { yty: true, engine });
        await a.update(X.rowSlice(0, 1000), Y.rowSlice(0, 1000));
        a.updateSync(X.rowSlice(1000, 5000), Y.rowSlice(1000, 5000));
        // A shard with its own shift, merged both ways round.
        const b = new SufficientStats(p, q, { yty: true, engine }).updateSync(X.rowSlice(5000, N), Y.rowSlice(5000, N));
        const ba = b.clone().merge(a);
        a.merge(b);
        const x64 = toF64(X), y64 = toF64(Y);
        const raw = (s: SufficientStats) => s.about(new Float64Array(p), new Float64Array(q));
        const xtx = matmul(transpose(x64), x64), xty = matmul(transpose(x64), y64), yty = matmul(transpose(y64), y64);
        // float64 products (the default) for either input dtype; X^T Y is ill-conditioned here
        // (|sum x y| << sum |x y|), so its reference carries ~1e-13 of its own rounding.
        const t = 1e-11;
        for (const s of [one, a, ba]) {
          assert.equal(s.count, N);
          const m = raw(s);
          assert.ok(relErr(m.xx.data, xtx.data) < t, `xtx ${relErr(m.xx.data, xtx.data)}`);
          assert.ok(relErr(m.xy.data, xty.data) < t, `xty ${relErr(m.xy.data, xty.data)}`);
          assert.ok(relErr(m.yy!.data, yty.data) < t, `yty ${relErr(m.yy!.data, yty.data)}`);
        }
        // The centred moments against a two-pass float64 centring.
        const mean = (M: typeof x64) => Float64Array.from({ length: M.cols }, (_, j) => { let u = 0; for (let i = 0; i < N; i++) u += M.data[i * M.cols + j]; return u / N; });
        const mx = mean(x64);
        const xc = toF64(X);
        for (let i = 0; i < N; i++) for (let j = 0; j < p; j++) xc.data[i * p + j] -= mx[j];
        const cxx = matmul(transpose(xc), xc);
        for (const s of [one, a, ba]) assert.ok(relErr(s.centred().xx.data, cxx.data) < 1e-12, `centred ${relErr(s.centred().xx.data, cxx.data)}`);
        assert.ok(Math.abs(one.meanX()[0] - mx[0]) < 1e-12 * 30);
        const fast = new SufficientStats(p, q, { engine, precision: 'float32' }).updateSync(X, Y);
        assert.ok(relErr(fast.centred().xx.data, cxx.data) < (dtype === 'float32' ? 1e-4 : 1e-13), `fast ${relErr(fast.centred().xx.data, cxx.data)}`);
      });

      test(`statistics of chosen rows ${dtype}: taken in place equal those of a copy bit for bit; merging and fold scoring against float64`, async () => {
        const p = 13, q = 5, N = 40000; // past one 16,384-row block
        const X = randn(rng, N, p, dtype), Y = randn(rng, N, q, dtype);
        for (let i = 0; i < X.data.length; i++) X.data[i] += 20;
        const rows = Int32Array.from({ length: N }, (_, i) => i).filter(() => rng() < 0.45);
        for (let i = rows.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [rows[i], rows[j]] = [rows[j], rows[i]]; }
        const bits = (s: SufficientStats) => [s.n, s.sumX, s.sumY, s.sqY, s.xtx, s.xty, s.yty!, s.shiftX, s.shiftY].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex'));
        const copied = await new SufficientStats(p, q, { yty: true, engine }).update(X.takeRows(rows), Y.takeRows(rows));
        const workspace = SufficientStats.workspace(p, q, rows.length);
        const inPlace = await new SufficientStats(p, q, { yty: true, engine }).update(X, Y, { rows, workspace });
        assert.deepEqual(bits(inPlace), bits(copied));
        const other = new SufficientStats(p, q, { yty: true, engine }).updateSync(X, Y, { rows: rows.subarray(0, 500), workspace });
        assert.deepEqual(bits(other), bits(new SufficientStats(p, q, { yty: true, engine }).updateSync(X.takeRows(rows.subarray(0, 500)), Y.takeRows(rows.subarray(0, 500)))));
        await assert.rejects(new SufficientStats(p, q, { engine }).update(X, Y, { rows: Int32Array.of(0, N) }), /index: expected row numbers in \[0, 40000\), received 40000 at position 1/);
        // Merging re-centres in native code: against this float64 reference of the shift-change identity.
        const merged = inPlace.clone().merge(other);
        const ref = new Float64Array(inPlace.xtx);
        const dx = other.shiftX.map((v, i) => v - inPlace.shiftX[i]);
        for (let i = 0; i < p; i++) {
          const ci = other.sumX[i] + other.count * dx[i];
          for (let j = 0; j < p; j++) ref[i * p + j] += other.xtx[i * p + j] + dx[i] * other.sumX[j] + ci * dx[j];
        }
        assert.ok(relErr(merged.xtx, ref) < 1e-14, `merge ${relErr(merged.xtx, ref)}`);
        assert.deepEqual(SufficientStats.sum([inPlace, other]).xtx, merged.xtx);
        // In given memory (dirty: it is zeroed first), the same statistics bit for bit; too little is refused.
        const room = new Float64Array(SufficientStats.matrixLength(p, q, true) + 7).fill(NaN);
        const placed = SufficientStats.sum([inPlace, other], { memory: room });
        assert.deepEqual(bits(placed), bits(merged));
        assert.equal(placed.xtx.buffer, room.buffer);
        assert.throws(() => new SufficientStats(p, q, { yty: true, memory: room.subarray(0, p * p + p * q) }), /memory: expected a Float64Array of at least 259 values \(p\^2 \+ pq \+ q\^2\)/);
        assert.throws(() => SufficientStats.sum([]), /parts: expected a non-empty array of SufficientStats/);
        // Taking a part back out, about the rest's own means, in one pass: the statistics of the rest.
        for (const into of [undefined, new SufficientStats(p, q, { yty: true, engine })]) {
          const rest = SufficientStats.difference(merged, other, into), want = inPlace.centred(), got = rest.centred();
          assert.equal(rest.count, inPlace.count);
          assert.ok(relErr(rest.meanX(), inPlace.meanX()) < 1e-13 && relErr(rest.meanY(), inPlace.meanY()) < 1e-13);
          for (const k of ['xx', 'xy', 'yy'] as const) assert.ok(relErr(got[k]!.data, want[k]!.data) < 1e-10, `difference ${k} ${relErr(got[k]!.data, want[k]!.data)}`);
          assert.ok(relErr(got.sqY, want.sqY) < 1e-10, `difference sqY ${relErr(got.sqY, want.sqY)}`);
        }
        // Lent to a solve (here spoilt outright), a lending difference's moments are re-formed when next read.
        const lending = SufficientStats.difference(merged, other, undefined, { lend: true });
        lending.lendCentred()!.xx.data.fill(NaN);
        assert.ok(relErr(lending.centred().xx.data, inPlace.centred().xx.data) < 1e-10);
        assert.equal(inPlace.lendCentred(), undefined, 'only a lending difference lends');
        assert.throws(() => SufficientStats.difference(other, merged), /part: expected fewer rows than the total's 500, received/);
        assert.throws(() => SufficientStats.difference(merged, other, merged), /into: expected statistics other than total and part/);
        // A map scored on the rows' statistics alone: per column, sum (x M + b - y)^2 against float64 rows.
        const M = randn(rng, p, q, 'float64'), b = Float64Array.from({ length: q }, () => 20 * rng());
        const Xr = toF64(X.takeRows(rows)), Yr = toF64(Y.takeRows(rows)), P = matmul(Xr, M);
        const wantRes = new Float64Array(q);
        for (let i = 0; i < rows.length; i++) for (let j = 0; j < q; j++) wantRes[j] += (P.data[i * q + j] + b[j] - Yr.data[i * q + j]) ** 2;
        const gotRes = await inPlace.residualSquares(M, b);
        assert.ok(relErr(gotRes, wantRes) < 1e-11, `residualSquares ${relErr(gotRes, wantRes)}`);
        // A NaN is named by its row in the whole set.
        const bad = X.clone();
        bad.data[rows[7] * p + 4] = NaN;
        await assert.rejects(new SufficientStats(p, q, { engine }).update(bad, Y, { rows, names: ['src', 'tgt'], rowOffset: 1000 }), new RegExp(`src: expected finite values, received NaN at row ${1000 + rows[7]}, column 4`));
      });
    }

    test('a map scored on statistics over several 256-row blocks of X^T X, with a thread limit: against float64 rows', async () => {
      const p = 600, q = 7, N = 900; // p not a multiple of the block: a short last block
      const X = randn(rng, N, p, 'float64'), Y = randn(rng, N, q, 'float64');
      for (let i = 0; i < X.data.length; i++) X.data[i] += 3;
      const stats = await new SufficientStats(p, q, { engine }).update(X, Y);
      const M = randn(rng, p, q, 'float64'), b = Float64Array.from({ length: q }, () => 5 * rng());
      const P = matmul(X, M), want = new Float64Array(q);
      for (let i = 0; i < N; i++) for (let j = 0; j < q; j++) want[j] += (P.data[i * q + j] + b[j] - Y.data[i * q + j]) ** 2;
      for (const e of [engine, engine.withThreads(1)]) {
        const got = await stats.residualSquares(M, b, e);
        assert.ok(relErr(got, want) < 1e-11, `residualSquares ${relErr(got, want)}`);
      }
      await assert.rejects(stats.residualSquares(M, new Float64Array(q - 1)), /bias: expected a Float64Array of length 7/);
    });
  });
}

test('an async operation keeps its inputs alive and leaves the event loop free', async () => {
  const engine = Engine.get();
  const n = 768;
  const A = randn(rng, n, n, 'float32'), B = randn(rng, n, n, 'float32');
  const ref = engine.gemmSync(A, B);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const pending: Promise<Matrix>[] = [];
  for (let r = 0; r < 8; r++) pending.push(engine.gemm(A.clone(), B.clone())); // only the native call holds these
  (globalThis as { gc?: () => void }).gc?.();
  const results = await Promise.all(pending);
  clearInterval(timer);
  for (const r of results) assert.ok(relErr(r.data, ref.data) < 1e-6);
  assert.ok(ticks > 0, 'the event loop ran while the products were computed');
});

// Large arrays ask for transparent huge pages before their first touch (core/matrix.ts allocate):
// where the kernel's policy allows them, touching one must grow this process's huge-page memory.
test('large matrices are backed by transparent huge pages where the kernel allows them', (t) => {
  let policy = '';
  try {
    policy = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  } catch {
    // not Linux, or no THP
  }
  if (!/\[(madvise|always)\]/.test(policy)) {
    t.skip(`transparent huge pages not offered here (policy: ${policy.trim() || 'absent'})`);
    return;
  }
  const hugeKiB = () => Number(/AnonHugePages:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))![1]);
  const before = hugeKiB();
  const m = Matrix.zeros(1024, 2048, 'float64'); // 16 MiB
  assert.ok(m.data.every((v) => v === 0));
  m.data.fill(1);
  const grown = hugeKiB() - before;
  assert.ok(grown >= 4096, `expected at least 4 MiB more huge-page memory after touching a 16 MiB matrix, got ${grown} KiB`);
  assert.equal(m.data.reduce((a, b) => a + b, 0), 1024 * 2048);
});

test('Matrix.stack puts its parts one under another in the first part\'s dtype; Matrix.from copies rows', () => {
  const a = randn(rng, 1, 3, 'float64'), b = randn(rng, 2, 3, 'float64');
  const s = Matrix.stack([a, b]);
  assert.equal(s.dtype, 'float64');
  assert.deepEqual(s.shape, [3, 3]);
  assert.deepEqual(Array.from(s.data), [...a.data, ...b.data]);
  assert.equal(Matrix.stack([b.astype('float32'), a]).dtype, 'float32');
  assert.throws(() => Matrix.stack([a, Matrix.zeros(1, 2, 'float64')]), /parts\[1\]: expected 3 columns like parts\[0\], received 2/);
  assert.throws(() => Matrix.stack([]), /parts: expected at least one matrix/);
  assert.throws(() => Matrix.from([[1, 2], [3]]), /values\[1\]: expected 2 columns like values\[0\], received 1/);
});
