#!/usr/bin/env python3
"""Puts gpu_bench's and torch_bench's JSON side by side: bench/gpu/RESULTS.md's table."""
import json
import sys

emb, tor = (json.load(open(f)) for f in sys.argv[1:3])
tests = open(sys.argv[3]).read().strip() if len(sys.argv) > 3 else ''

ROWS = [  # label, key, unit, target (issue #8)
    ('Ridge fit 1,281,167 × 2048 → 2048, device data, float32', 'fit_big_float32', 's', ''),
    ('  same, 3xTF32 (float32-class accuracy on tensor cores; hi·hi in 8 sub-blocks)', 'fit_big_3xtf32', 's', '≤ 0.30 s, error ≤ 1e-5'),
    ('    3xTF32, hi·hi in 1 block of 16,384 rows', 'fit_big_3xtf32_slots1', 's', ''),
    ('    3xTF32, hi·hi in 4 sub-blocks', 'fit_big_3xtf32_slots4', 's', ''),
    ('    3xTF32, hi·hi in 16 sub-blocks', 'fit_big_3xtf32_slots16', 's', ''),
    ('  same, TF32', 'fit_big_tf32', 's', ''),
    ('  same, BF16', 'fit_big_bf16', 's', ''),
    ('  same, float64 products (the reference)', 'fit_big_f64stats', 's', ''),
    ('  from host memory, float32', 'fit_big_host_float32', 's', ''),
    ('  from host memory, 3xTF32', 'fit_big_host_3xtf32', 's', '≤ 1.3× device-resident'),
    ('Apply X·M + b, 1,281,167 × 2048 → 2048, float32', 'apply_float32', 's', '≥ 50 TFLOP/s'),
    ('  same without the bias (X·M)', 'apply_nobias_float32', 's', ''),
    ('  same, TF32', 'apply_tf32', 's', ''),
    ('  same, 3xTF32', 'apply_3xtf32', 's', ''),
    ('Cosine 100,000 × 512, top-10 per row, float32', 'cosine_float32', 's', '≤ 0.25 s, memory O(N·k)'),
    ('  same, TF32', 'cosine_tf32', 's', ''),
    ('Normal equations 50,000 × 2048 → 512, float32', 'fit_50k_float32', 's', ''),
    ('  same, 3xTF32', 'fit_50k_3xtf32', 's', ''),
    ('Least squares by Householder QR, 50,000 × 2048 → 512', 'lstsq_50k_qr', 's', ''),
]


def cell(d, key):
    if key + '_failed' in d:
        return 'failed: ' + d[key + '_failed']
    if key + '_s' not in d:
        return '—'
    s = f"{d[key + '_s'] * 1e3:.1f} ms"
    if key + '_relerr' in d:
        s += f" (error {d[key + '_relerr']:.1e})"
    if key + '_tflops' in d:
        s += f" = {d[key + '_tflops']:.1f} TFLOP/s"
    return s


lines = [
    '# GPU benchmarks: embmap beside PyTorch',
    '',
    f"Card: **{emb.get('device', '?')}**; PyTorch {tor.get('torch', '?')} on {tor.get('device', '?')}, same run.",
    'Written by `bench/gpu/run.sh`. Times are the best of 3 (apply and cosine: of 4), the device',
    'synchronised before and after. Errors: relative Frobenius error of the fitted map against the',
    "float64 solution of the same data (each side against its own). Data: X's 2048 columns scaled",
    'geometrically from 1 to 0.1 (covariance condition number 100), Y = X W + 0.1 noise.',
    '',
    '| work | embmap | PyTorch | target |',
    '|---|---|---|---|',
]
for label, key, _, target in ROWS:
    lines.append(f'| {label} | {cell(emb, key)} | {cell(tor, key)} | {target} |')
extra = []
for k in ('h2d_pinned_gbps', 'h2d_pageable_gbps', 'cosine_float32_top10_agreement',
          'cosine_tf32_top10_agreement', 'cosine_result_bytes', 'lstsq_50k_qr_rank'):
    if k in emb:
        extra.append(f'- embmap `{k}`: {emb[k]:g}')
for k in ('cosine_float32_peak_bytes', 'cosine_tf32_peak_bytes'):
    if k in tor:
        extra.append(f'- PyTorch `{k}`: {tor[k] / 2**30:.1f} GiB')
if extra:
    lines += ['', *extra]
if tests:
    lines += ['', '## GPU tests in the same run', '', '```', tests, '```']
print('\n'.join(lines))
