#!/usr/bin/env python3
"""PyTorch doing gpu_bench.cc's work on the same GPU, in the same run (bench/gpu/run.sh): the
same sizes and the same kind of data (X's columns scaled from 1 to 0.1, Y = X W + noise), each
fit's error against its own float64 solution. Prints one JSON object."""
import json
import math
import sys
import time

import torch

QUICK = '--quick' in sys.argv
REPS = 1 if QUICK else 3
out = {'torch': torch.__version__, 'device': torch.cuda.get_device_name(0)}


def log(k, v):
    out[k] = v
    print(f'  {k:40s} {v}', file=sys.stderr, flush=True)


def best(reps, f):
    b = float('inf')
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        f()
        torch.cuda.synchronize()
        b = min(b, time.perf_counter() - t)
    return b


def tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def pair(n, p, q, seed):
    g = torch.Generator(device='cuda').manual_seed(seed)
    X = torch.randn(n, p, device='cuda', generator=g)
    X.mul_(torch.pow(10.0, -torch.arange(p, device='cuda', dtype=torch.float32) / p))
    W = torch.randn(p, q, device='cuda', generator=g) / math.sqrt(p)
    Y = X @ W
    Y.add_(torch.randn(n, q, device='cuda', generator=g), alpha=0.1)
    return X, Y


def ridge(X, Y, lam, centre=True):
    """Normal equations in the inputs' dtype, as users write them."""
    G, C = X.T @ X, X.T @ Y
    if centre:
        n = X.shape[0]
        mx, my = X.mean(0), Y.mean(0)
        G -= n * torch.outer(mx, mx)
        C -= n * torch.outer(mx, my)
    G.diagonal().add_(lam)
    return torch.cholesky_solve(C, torch.linalg.cholesky(G))


def ridge64(X, Y, lam, centre=True, chunk=65536):
    """The float64 reference: float64 statistics of the float32 data, chunk by chunk."""
    p, q = X.shape[1], Y.shape[1]
    G = torch.zeros(p, p, dtype=torch.float64, device='cuda')
    C = torch.zeros(p, q, dtype=torch.float64, device='cuda')
    sx = torch.zeros(p, dtype=torch.float64, device='cuda')
    sy = torch.zeros(q, dtype=torch.float64, device='cuda')
    for i in range(0, X.shape[0], chunk):
        Xc, Yc = X[i:i + chunk].double(), Y[i:i + chunk].double()
        G += Xc.T @ Xc
        C += Xc.T @ Yc
        sx += Xc.sum(0)
        sy += Yc.sum(0)
    if centre:
        n = X.shape[0]
        G -= torch.outer(sx, sx) / n
        C -= torch.outer(sx, sy) / n
    G.diagonal().add_(lam)
    return torch.cholesky_solve(C, torch.linalg.cholesky(G))


def relerr(a, ref):
    return float(torch.linalg.norm(a.double() - ref) / torch.linalg.norm(ref))


def timed_fit(key, X, Y, lam, ref, centre=True, tf=False):
    tf32(tf)
    try:
        W = None

        def run():
            nonlocal W
            W = ridge(X, Y, lam, centre)
        log(key + '_s', best(REPS, run))
        log(key + '_relerr', relerr(W, ref))
    except Exception as e:  # e.g. TF32 Gram matrices that are not positive definite
        log(key + '_failed', str(e).splitlines()[0][:120])
    finally:
        tf32(False)


# ---- 1. ridge fit, N = 1,281,167, 2048 -> 2048
N, P = (200000 if QUICK else 1281167), 2048
X, Y = pair(N, P, P, 1)
ref = ridge64(X, Y, 1.0)
timed_fit('fit_big_float32', X, Y, 1.0, ref)
timed_fit('fit_big_tf32', X, Y, 1.0, ref, tf=True)
Xh, Yh = X.cpu(), Y.cpu()
W = None


def host_fit():
    global W
    W = ridge(Xh.cuda(), Yh.cuda(), 1.0)


log('fit_big_host_float32_s', best(REPS, host_fit))
log('fit_big_host_float32_relerr', relerr(W, ref))
del X, Y, Xh, Yh, W, ref
torch.cuda.empty_cache()

# ---- 2. apply X M + b over 1.28M rows, 2048 -> 2048
X = torch.randn(N, 2048, device='cuda')
M = torch.randn(2048, 2048, device='cuda')
b = torch.randn(2048, device='cuda')
for name, on in (('float32', False), ('tf32', True)):
    tf32(on)
    t = best(REPS + 1, lambda: torch.addmm(b, X, M))
    log(f'apply_{name}_s', t)
    log(f'apply_{name}_tflops', 2 * N * 2048 * 2048 / t / 1e12)
tf32(False)
del X, M, b
torch.cuda.empty_cache()

# ---- 3. all-pairs cosine 100,000 x 512, top-10 per row (PyTorch holds the score matrix)
n = 20000 if QUICK else 100000
E = torch.nn.functional.normalize(torch.randn(n, 512, device='cuda'), dim=1)


def cosine():
    S = E @ E.T
    S.fill_diagonal_(-float('inf'))
    return S.topk(10, dim=1)


for name, on in (('float32', False), ('tf32', True)):
    tf32(on)
    torch.cuda.reset_peak_memory_stats()
    log(f'cosine_{name}_s', best(REPS + 1, cosine))
    log(f'cosine_{name}_peak_bytes', torch.cuda.max_memory_allocated())
tf32(False)
del E
torch.cuda.empty_cache()

# ---- 4. N = 50,000, 2048 -> 512: normal equations and QR (torch.linalg.lstsq, 'gels')
X, Y = pair(50000, 2048, 512, 31)
ref = ridge64(X, Y, 0.0, centre=False)
timed_fit('fit_50k_float32', X, Y, 0.0, ref, centre=False)
W = None


def qr():
    global W
    W = torch.linalg.lstsq(X, Y).solution


log('lstsq_50k_qr_s', best(REPS + 1, qr))
log('lstsq_50k_qr_relerr', relerr(W, ref))
print(json.dumps(out))
