"""The same work as the Node benchmarks, in NumPy, timed the same way.

Run by bench/engine.bench.ts and bench/fit.bench.ts (twice: as the machine has it, and with
OPENBLAS_CORETYPE=SkylakeX set for that process only). Prints one JSON object on stdout.
usage: numpy_bench.py engine|fit DIR
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


def main():
    suite, d = sys.argv[1], sys.argv[2]
    out = {"numpy": np.__version__, "blas": blas_info()}
    {"engine": engine_suite, "fit": fit_suite}[suite](d, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
