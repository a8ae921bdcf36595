// Child process of engine.bench: GEMM 4096^3 on cpu-blas under whatever BLIS_ARCH_TYPE the
// parent set, so BLIS's own kernel choice can be measured beside the one embmap selects.
import { Matrix } from '../src/core/matrix';
import { Engine } from '../src/engine/engine';

async function main(): Promise<void> {
  const e = Engine.get('cpu-blas');
  const a = Matrix.zeros(4096, 4096, 'float32'), b = Matrix.zeros(4096, 4096, 'float32');
  for (const m of [a, b]) for (let i = 0; i < m.data.length; i++) m.data[i] = Math.random();
  let best = Infinity;
  for (let r = 0; r < 2; r++) {
    const s = process.hrtime.bigint();
    await e.gemm(a, b);
    best = Math.min(best, Number(process.hrtime.bigint() - s) / 1e9);
  }
  process.stdout.write(JSON.stringify({ kernel: e.info().kernel, gemm4096_gflops: (2 * 4096 ** 3) / best / 1e9 }) + '\n');
}

void main();
