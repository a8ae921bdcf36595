#!/usr/bin/env bash
# GPU tests and benchmarks, embmap beside PyTorch, on a machine with an NVIDIA GPU, its CUDA
# libraries (cuBLAS, cuSOLVER, NVRTC, CUDA 12 or 13) and PyTorch. Writes bench/gpu/RESULTS.md,
# with the raw JSON and the test logs beside it.
#   bench/gpu/run.sh [--quick]
# NODE (default: node) runs the engine's JS tests (after `npm ci`); EMBMAP_GPU_BUILD (default:
# build-gpu) holds gpu_bench and linalg_test, built here with cmake when absent;
# EMBMAP_GPU_OUT (default: bench/gpu) receives the results.
set -uo pipefail
cd "$(dirname "$0")/../.."
QUICK=${1:-}
NODE=${NODE:-node}
BUILD=${EMBMAP_GPU_BUILD:-build-gpu}
OUT=${EMBMAP_GPU_OUT:-bench/gpu}
mkdir -p "$OUT"
if [ ! -x "$BUILD/gpu_bench" ]; then
  cmake -S . -B "$BUILD" -DEMBMAP_BUILD_TESTS=ON -DEMBMAP_BUILD_GPU_BENCH=ON >/dev/null &&
    cmake --build "$BUILD" -j || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null

echo "== C++ tests: every linalg primitive on every backend, cuda included" | tee "$OUT/tests.log"
"$BUILD/linalg_test" >"$OUT/linalg_test.log" 2>&1
echo "linalg_test exit $?" >>"$OUT/tests.log"
grep -E "^backend|^cuda |FAIL|checks? (passed|failed)" "$OUT/linalg_test.log" | head -40 >>"$OUT/tests.log"
echo "== JS tests: engine.test (every backend) and engine.cuda.test" >>"$OUT/tests.log"
"$NODE" --expose-gc --test --test-reporter=spec dist/test/engine.test.js dist/test/engine.cuda.test.js \
  >"$OUT/node_test.log" 2>&1
echo "node --test exit $?" >>"$OUT/tests.log"
grep -E "^# (gemm|engine)|^ℹ (tests|pass|fail|skipped)|✖|# SKIP|precision" "$OUT/node_test.log" | head -40 >>"$OUT/tests.log"
cat "$OUT/tests.log"

echo "== embmap (gpu_bench)"
"$BUILD/gpu_bench" $QUICK >"$OUT/embmap.json" || echo '{}' >"$OUT/embmap.json"
echo "== PyTorch (torch_bench.py)"
PYTHONUNBUFFERED=1 python3 bench/gpu/torch_bench.py $QUICK >"$OUT/torch.json" || echo '{}' >"$OUT/torch.json"
python3 bench/gpu/table.py "$OUT/embmap.json" "$OUT/torch.json" "$OUT/tests.log" >"$OUT/RESULTS.md.tmp" &&
  mv "$OUT/RESULTS.md.tmp" "$OUT/RESULTS.md" && cat "$OUT/RESULTS.md"
