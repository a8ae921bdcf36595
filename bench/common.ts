// Shared by the benchmarks: data, timing, and the NumPy comparator.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Matrix } from '../src/core/matrix';

export const REPO = path.join(__dirname, '..', '..');
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Uniform [-1, 1) float32 rows (fast to make; the benchmarks need sizes, not distributions). */
export function uniform(rows: number, cols: number): Matrix<'float32'> {
  const m = Matrix.zeros(rows, cols, 'float32');
  for (let i = 0; i < m.data.length; i++) m.data[i] = Math.random() * 2 - 1;
  return m;
}

/** Best wall time in seconds over `reps` runs. */
export async function best(reps: number, fn: () => Promise<unknown>): Promise<number> {
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const s = process.hrtime.bigint();
    await fn();
    t = Math.min(t, Number(process.hrtime.bigint() - s) / 1e9);
  }
  return t;
}

/** Per-call latency percentiles in microseconds, the first 10% of calls dropped as warm-up. */
export function percentiles(fn: () => void, calls: number): { p50: number; p99: number } {
  const lat = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const s = process.hrtime.bigint();
    fn();
    lat[i] = Number(process.hrtime.bigint() - s) / 1e3;
  }
  const sorted = lat.subarray(Math.floor(calls / 10)).sort();
  return { p50: sorted[Math.floor(sorted.length / 2)], p99: sorted[Math.floor(sorted.length * 0.99)] };
}

/** The environment without the OpenBLAS overrides some machines set, so NumPy runs as installed. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...env } = process.env;
  return env;
}

/** Runs one suite of bench/numpy_bench.py and returns its JSON. */
export function runNumpy(
  suite: 'engine' | 'fit' | 'macro' | 'gen' | 'reference', dir: string, env: NodeJS.ProcessEnv, ...args: string[]
): Record<string, unknown> {
  const out = execFileSync(PYTHON, [path.join(REPO, 'bench', 'numpy_bench.py'), suite, dir, ...args], {
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** ||a - b|| / ||b|| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

/** `embmap serve` on 127.0.0.1 with the map file as "m", on a free port, in a child process; resolves once it listens. */
export async function startServe(mapFile: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const cli = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--map', `m=${mapFile}`, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { child, url, exited };
}

/** The value after `name` on the command line (`--work DIR`), if given. */
export function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
