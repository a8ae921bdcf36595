"""The same work as the Node benchmarks, in NumPy, timed the same way.

Run by bench/engine.bench.ts and bench/fit.bench.ts (twice: as the machine has it, and with
OPENBLAS_CORETYPE=SkylakeX set for that process only), and by bench/macro.ts (`embmap bench`,
as installed). Prints one JSON object on stdout.
usage: numpy_bench.py engine|fit|macro|reference DIR, or numpy_bench.py gen DIR N P Q COND
  DIR holds X.npy and Y.npy (written by the Node bench, or by `gen`); `reference` writes the
  float64 answer (W_ref.npy, b_ref.npy) that `fit` and bench/fit.bench.ts measure errors against.
"""
import ctypes
import json
import os
import sys
import time

import numpy as np


def blas_info():
    """Which BLAS numpy runs, and for OpenBLAS the core (kernel) it selected."""
    info = {"library": "unknown", "kernel": "unknown"}
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1] for l in f if "blas" in l or "lapack" in l})
    info["loaded"] = libs
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
        except OSError:
            continue
        if hasattr(h, "openblas_get_corename"):
            h.openblas_get_corename.restype = ctypes.c_char_p
            h.openblas_get_config.restype = ctypes.c_char_p
            info["library"] = "OpenBLAS " + h.openblas_get_config().decode()
            info["kernel"] = h.openblas_get_corename().decode()
            break
        if hasattr(h, "bli_info_get_version_str"):
            info["library"] = "BLIS"
    return info


def best(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gen_suite(d, out, n, p, q, cond):
    """Issue 13's case: float32 X (n x p) with condition number ~cond after centring and large
    ReLU-like column means, Y = X M + 1 + noise (n x q), written as X.npy, Y.npy."""
    n, p, q, cond = int(n), int(p), int(q), float(cond)
    rng = np.random.default_rng(13)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    X = rng.standard_normal((n, p), dtype=np.float32)
    X -= X.mean(0)
    X = (X * np.logspace(0, -np.log10(cond), p).astype(np.float32)) @ Q.T.astype(np.float32)
    X += rng.uniform(2, 5, p).astype(np.float32)
    M = rng.standard_normal((p, q), dtype=np.float32)
    Y = X @ M + 1 + 0.01 * rng.standard_normal((n, q), dtype=np.float32)
    np.save(os.path.join(d, "X.npy"), X.astype(np.float32))
    np.save(os.path.join(d, "Y.npy"), Y.astype(np.float32))


def reference_suite(d, out):
    """The float64 answer on the files' values under the intercept convention (centre, then
    least squares), by QR of the centred data (error ~cond * 1e-16), or for fewer rows than
    columns NumPy's minimum-norm lstsq. Writes W_ref.npy, b_ref.npy."""
    X = np.load(os.path.join(d, "X.npy")).astype(np.float64)
    Y = np.load(os.path.join(d, "Y.npy")).astype(np.float64)
    mx, my = X.mean(0), Y.mean(0)
    Xc, Yc = X - mx, Y - my
    if X.shape[0] > X.shape[1]:
        Qm, R = np.linalg.qr(Xc)
        W = np.linalg.solve(R, Qm.T @ Yc)
    else:
        W, _, _, _ = np.linalg.lstsq(Xc, Yc, rcond=None)
        R = Xc
    np.save(os.path.join(d, "W_ref.npy"), W)
    np.save(os.path.join(d, "b_ref.npy"), (my - mx @ W)[None, :])
    s = np.linalg.svd(R, compute_uv=False)
    s = s[s > s[0] * max(X.shape) * 2.2e-16]
    out["cond"] = float(s[0] / s[-1])


def fit_suite(d, out):
    """NumPy's accurate path: the centred float64 normal equations solved on arrays already in
    memory (loading and the float64 conversion not timed); its error against W_ref.npy."""
    X = np.load(os.path.join(d, "X.npy")).astype(np.float64)
    Y = np.load(os.path.join(d, "Y.npy")).astype(np.float64)

    def fit64():
        mx, my = X.mean(0), Y.mean(0)
        Xc, Yc = X - mx, Y - my
        return np.linalg.solve(Xc.T @ Xc, Xc.T @ Yc)

    out["fit64_in_memory_s"] = best(fit64, 1)
    W_ref = np.load(os.path.join(d, "W_ref.npy"))
    out["fit64_relerr"] = float(np.linalg.norm(fit64() - W_ref) / np.linalg.norm(W_ref))


def engine_suite(d, out):
    rng = np.random.default_rng()

    a = rng.standard_normal((4096, 4096), dtype=np.float32)
    b = rng.standard_normal((4096, 4096), dtype=np.float32)
    t = best(lambda: a @ b, 3)
    out["gemm4096_gflops"] = 2 * 4096**3 / t / 1e9

    X = np.load(os.path.join(d, "X.npy"))
    Y = np.load(os.path.join(d, "Y.npy"))
    M = rng.standard_normal((2048, 2048), dtype=np.float32)
    t = best(lambda: X @ M, 2)
    out["gemm_50000x2048x2048_gflops"] = 2 * X.shape[0] * 2048 * 2048 / t / 1e9

    def fit32():
        return np.linalg.solve(X.T @ X, X.T @ Y)

    def fit64():
        X64 = X.astype(np.float64)
        return np.linalg.solve(X64.T @ X64, X64.T @ Y.astype(np.float64))

    out["fit32_s"] = best(fit32, 2)
    out["fit64_s"] = best(fit64, 1)
    W64 = fit64()
    np.save(os.path.join(d, "W64.npy"), W64)
    out["fit32_relerr"] = float(np.linalg.norm(fit32() - W64) / np.linalg.norm(W64))

    x = rng.standard_normal((1, 512), dtype=np.float32)
    m = rng.standard_normal((512, 512), dtype=np.float32)
    bias = rng.standard_normal(512, dtype=np.float32)
    lat = []
    for i in range(20000):
        t = time.perf_counter_ns()
        x @ m + bias
        lat.append(time.perf_counter_ns() - t)
    lat = np.sort(np.array(lat[2000:]))
    out["vec512_p50_us"] = float(lat[len(lat) // 2] / 1e3)
    out["vec512_p99_us"] = float(lat[int(len(lat) * 0.99)] / 1e3)


def latency_us(fn, calls):
    """p50 and p99 of one call in microseconds, the first 10% dropped as warm-up."""
    lat = []
    for _ in range(calls):
        t = time.perf_counter_ns()
        fn()
        lat.append(time.perf_counter_ns() - t)
    lat = np.sort(np.array(lat[calls // 10:]))
    return float(lat[len(lat) // 2] / 1e3), float(lat[int(len(lat) * 0.99)] / 1e3)


def macro_suite(d, out):
    """embmap bench (bench/macro.ts): fit with intercept, apply, cosine top-k; the same arrays."""
    cfg = json.load(open(os.path.join(d, "macro.json")))
    X, Y = np.load(os.path.join(d, "X.npy")), np.load(os.path.join(d, "Y.npy"))
    W, b = np.load(os.path.join(d, "W.npy")), np.load(os.path.join(d, "b.npy"))

    def fit64():
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        mx, my = X64.mean(0), Y64.mean(0)
        Xc, Yc = X64 - mx, Y64 - my
        M = np.linalg.solve(Xc.T @ Xc, Xc.T @ Yc)
        return M, my - mx @ M

    out["fit_s"] = best(fit64, cfg["reps"])
    np.save(os.path.join(d, "Wfit64.npy"), fit64()[0])

    out["apply_vps"] = X.shape[0] / best(lambda: X @ W + b, cfg["reps"])

    def in_batches():
        for i in range(0, X.shape[0], 256):
            X[i:i + 256] @ W + b

    out["apply256_vps"] = X.shape[0] / best(in_batches, cfg["reps"])
    x = X[:1].copy()
    out["apply1_p50_us"], out["apply1_p99_us"] = latency_us(lambda: x @ W + b, cfg["calls"])

    Q, G, k = np.load(os.path.join(d, "Q.npy")), np.load(os.path.join(d, "G.npy")), cfg["k"]

    def cosine():
        Gn = G / np.linalg.norm(G, axis=1, keepdims=True)
        for i in range(0, Q.shape[0], 1024):
            q = Q[i:i + 1024]
            S = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ Gn.T
            top = np.argpartition(-S, k, axis=1)[:, :k]
            np.take_along_axis(S, top, 1).argsort(axis=1)

    out["cosine_mpairs"] = Q.shape[0] * G.shape[0] / best(cosine, cfg["reps"]) / 1e6


def main():
    suite, d, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = {"numpy": np.__version__, "blas": blas_info()}
    suites = {"engine": engine_suite, "fit": fit_suite, "macro": macro_suite, "gen": gen_suite, "reference": reference_suite}
    suites[suite](d, out, *args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
