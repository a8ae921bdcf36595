"""The same work as the Node benchmarks, in NumPy, timed the same way.

Run by bench/engine.bench.ts and bench/fit.bench.ts (twice: as the machine has it, and with
OPENBLAS_CORETYPE=SkylakeX set for that process only), and by bench/macro.ts (`embmap bench`,
as installed). Prints one JSON object on stdout.
usage: numpy_bench.py engine|fit|macro DIR
  DIR holds X.npy and Y.npy written by the Node bench; W64.npy (the float64 normal-equation
  solution, the error reference) is written there.
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


def fit_suite(d, out):
    """Issue 3: fit from files, numpy's solve on float64 normal equations, load included."""
    def fit64():
        X = np.load(os.path.join(d, "X.npy")).astype(np.float64)
        Y = np.load(os.path.join(d, "Y.npy")).astype(np.float64)
        return np.linalg.solve(X.T @ X, X.T @ Y)

    out["fit64_from_files_s"] = best(fit64, 1)
    np.save(os.path.join(d, "W64.npy"), fit64())


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
    suite, d = sys.argv[1], sys.argv[2]
    out = {"numpy": np.__version__, "blas": blas_info()}
    {"engine": engine_suite, "fit": fit_suite, "macro": macro_suite}[suite](d, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
