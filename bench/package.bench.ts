// embmap as a dependency (issue 15): the prebuilt addon's GEMM beside the source build's (fresh
// processes, alternated, the same inputs and the same result required), the cost of
// require('embmap'), and the consumer install of .ci/consumer/run (pack, install the tarball with
// no compiler, compile and run a server). Writes bench/results/package.json and the "package"
// section of bench/RESULTS.md. Run: node dist/bench/package.bench.js (after npm pack has made
// prebuilds/, or it makes them through .ci/consumer/run).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../src/io/atomic';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const ROUNDS = 10;
const N = 1024;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

// Child: loads one addon by path, times a float32 N x N x N GEMM on cpu-blas on one thread (the
// builds differ, not the threading; one thread is far steadier on a shared machine), best of 5
// after a warm-up, and prints GFLOP/s, the library and a checksum of C for the same seeded inputs.
const GEMM_CHILD = `
const b = require(process.argv[1]); const n = ${N}; b.setThreads('cpu-blas', 1);
let s = 1; const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
const A = Float32Array.from({ length: n * n }, rnd), B = Float32Array.from({ length: n * n }, rnd), C = new Float32Array(n * n);
const run = () => b.gemm('cpu-blas', A, n, n, false, B, n, n, false, null, C, false);
run(); let best = Infinity;
for (let r = 0; r < 5; r++) { const t = process.hrtime.bigint(); run(); best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9); }
let sum = 0; for (let i = 0; i < C.length; i += 97) sum += C[i];
console.log(JSON.stringify({ gflops: 2 * n ** 3 / best / 1e9, library: b.backends()[0].library, kernel: b.backends()[0].kernel, checksum: sum }));`;

// Child: times require('embmap') (from inside the process, so Node's own start-up is not in it),
// then a first map created and applied, which loads the native addon.
const REQUIRE_CHILD = `
const c = process.cpuUsage(), t = process.hrtime.bigint();
const { LinearMap, Matrix } = require(process.argv[1]);
const u = process.cpuUsage(c), t1 = process.hrtime.bigint(), modules = Object.keys(require.cache).length;
const y = LinearMap.create(new Matrix(Float32Array.of(1, 2, 3, 4), 2, 2), Float32Array.of(1, 1)).apply([1, 1]);
if (y[0] !== 5 || y[1] !== 7) throw new Error('wrong map output ' + y);
console.log(JSON.stringify({ ms: Number(t1 - t) / 1e6, cpuMs: (u.user + u.system) / 1000, modules, firstApplyMs: Number(process.hrtime.bigint() - t1) / 1e6 }));`;

// Child: times loading the native addon alone, then its first look at the machine's backends
// (BLAS, LAPACK and CUDA libraries found at run time), which the first map applied also pays.
const ADDON_CHILD = `
const t = process.hrtime.bigint();
const b = require(process.argv[1]);
const t1 = process.hrtime.bigint();
b.backends();
console.log(JSON.stringify({ ms: Number(t1 - t) / 1e6, backendsMs: Number(process.hrtime.bigint() - t1) / 1e6 }));`;

/** Wall time of a bare \`node -e 0\`, measured from here: Node's start-up, which no require can shorten. */
function bareStart(): number {
  const t = process.hrtime.bigint();
  execFileSync(process.execPath, ['-e', '0']);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const child = (code: string, arg: string) => JSON.parse(execFileSync(process.execPath, ['-e', code, arg], { encoding: 'utf8' }));

function main(): void {
  const consumerOut = execFileSync(path.join(REPO, '.ci', 'consumer', 'run'), { encoding: 'utf8', cwd: REPO });
  const m = /npm install of the tarball: ([\d.]+) s, (\d+) MB of node_modules, (\d+) packages; require\('embmap'\) ([\d.]+) ms/.exec(consumerOut);
  if (!m) throw new Error(`.ci/consumer/run: unexpected output ${consumerOut}`);
  const consumer = { installSeconds: Number(m[1]), megabytes: Number(m[2]), packages: Number(m[3]), firstRequireMs: Number(m[4]) };

  const addons = {
    prebuilt: path.join(REPO, 'prebuilds', 'linux-x64', 'embmap.napi.glibc.node'),
    source: path.join(REPO, 'build', 'Release', 'embmap.node'),
  };
  const gemm: Record<string, { gflops: number[]; library: string; kernel: string; checksum: number }> = {};
  const ratios: number[] = []; // prebuilt / source within each round: neighbours in time
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? (['source', 'prebuilt'] as const) : (['prebuilt', 'source'] as const);
    for (const name of order) {
      const x = child(GEMM_CHILD, addons[name]);
      gemm[name] ??= { gflops: [], library: x.library, kernel: x.kernel, checksum: x.checksum };
      gemm[name].gflops.push(x.gflops);
      if (x.checksum !== gemm[name].checksum) throw new Error(`${name}: GEMM results differ between runs`);
    }
    ratios.push(gemm.prebuilt.gflops[r] / gemm.source.gflops[r]);
  }
  if (gemm.prebuilt.checksum !== gemm.source.checksum) throw new Error('the prebuilt and source-built addons computed different products');

  // Alternated, so that the three see the same load on the machine.
  const requires: { ms: number; cpuMs: number; modules: number; firstApplyMs: number }[] = [], addon: { ms: number; backendsMs: number }[] = [], bare: number[] = [];
  for (let r = 0; r < 15; r++) {
    requires.push(child(REQUIRE_CHILD, path.join(REPO, 'dist', 'src', 'index.js')));
    addon.push(child(ADDON_CHILD, addons.source));
    bare.push(bareStart());
  }
  const result = {
    date: new Date().toISOString(),
    machine: describeMachine(),
    consumer,
    gemm: Object.fromEntries(Object.entries(gemm).map(([k, v]) => [k, { ...v, median: median(v.gflops) }])),
    ratio: { median: median(ratios), rounds: ratios },
    require: {
      ms: median(requires.map((x) => x.ms)), cpuMs: median(requires.map((x) => x.cpuMs)), modules: requires[0].modules,
      firstApplyMs: median(requires.map((x) => x.firstApplyMs)), addonMs: median(addon.map((x) => x.ms)), backendsMs: median(addon.map((x) => x.backendsMs)), bareNodeMs: median(bare),
    },
  };
  writeFileAtomic(path.join(REPO, 'bench', 'results', 'package.json'), [Buffer.from(JSON.stringify(result, null, 2) + '\n')]);
  const g = result.gemm;
  const md = [
    `## Package (${result.date.slice(0, 10)})`,
    '',
    ...machineLines(result.machine),
    '',
    `Consumer install (.ci/consumer/run: \`npm install\` of the packed tarball into an empty app, no cmake or g++ on PATH): **${consumer.installSeconds.toFixed(1)} s**, **${consumer.megabytes} MB** of node_modules, ${consumer.packages} packages, no npm warnings; the app's strict TypeScript server then maps vectors over HTTP within 1e-5 of a float64 reference.`,
    '',
    `\`require('embmap')\`, timed inside fresh processes (Node's start-up excluded), median of 15: **${result.require.ms.toFixed(1)} ms** wall, ${result.require.cpuMs.toFixed(1)} ms CPU, ${result.require.modules} modules (the map API; the rest loads on first access), no ONNX Runtime, sharp, fastify, onnx-proto or flatbuffers (test/package.test.ts checks which modules and packages load). Then creating and applying a first map: ${result.require.firstApplyMs.toFixed(1)} ms, most of it the native addon's (loading it: ${result.require.addonMs.toFixed(1)} ms; its first look for BLAS, LAPACK and CUDA libraries: ${result.require.backendsMs.toFixed(1)} ms; timed alone in other processes). For scale, a bare \`node -e 0\` takes ${result.require.bareNodeMs.toFixed(0)} ms wall from spawn to exit on this machine in the same rounds.`,
    '',
    `| float32 GEMM ${N}³ on cpu-blas, one thread, fresh process each, ${ROUNDS} alternated rounds | median GFLOP/s | rounds | library (kernel) |`,
    '|---|---|---|---|',
    ...(['prebuilt', 'source'] as const).map((k) => `| ${k} (${path.relative(REPO, addons[k])}) | ${g[k].median.toFixed(1)} | ${g[k].gflops.map((v) => v.toFixed(0)).join(', ')} | ${g[k].library} (${g[k].kernel}) |`),
    '',
    `Prebuilt / source, median of the per-round ratios: **${result.ratio.median.toFixed(3)}** (rounds: ${ratios.map((v) => v.toFixed(2)).join(', ')}); both computed the same product (checksum ${g.source.checksum.toFixed(3)}). The two are the same code and flags; the prebuilt one is built in its own folder by \`npm pack\`.`,
  ].join('\n');
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'package', md);
  process.stdout.write(md + '\n');
}

if (!fs.existsSync(path.join(REPO, 'build', 'Release', 'embmap.node'))) throw new Error('build/Release/embmap.node: build the addon from source first (npm run build:native)');
main();
