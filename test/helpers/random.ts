// Fresh random inputs for every run; the seed is printed so a failure can be replayed with
// EMBMAP_TEST_SEED=<seed>.
import { Matrix, type DType } from '../../src/core/matrix';
import { makeRng as seededRng } from '../../src/evaluate/split';

export function makeRng(label: string): () => number {
  const seed = process.env.EMBMAP_TEST_SEED ? Number(process.env.EMBMAP_TEST_SEED) : (Math.random() * 2 ** 32) >>> 0;
  console.log(`# ${label}: seed ${seed}`);
  return seededRng(seed);
}

/** Standard normal via Box-Muller. */
export function gaussian(rng: () => number): number {
  const u = rng() || 1e-12;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

export function randn<D extends DType>(rng: () => number, rows: number, cols: number, dtype: D): Matrix<D> {
  const m = Matrix.zeros(rows, cols, dtype);
  for (let i = 0; i < m.data.length; i++) m.data[i] = gaussian(rng);
  return m;
}
