// Decompression bombs against the extraction's decode workers: a 15000² PNG (under 1 MB on disk,
// 675 MB as 8-bit RGB) and, for scale, a 6000² one just under the default 40 MP limit, each given
// to a pool of 2 decode workers (one copy per worker, decoded for a 224² input). Each case runs in
// a fresh child process; its peak RSS (VmHWM) is read before and after. Writes the "image-bomb"
// section of bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DecodePool } from '../src/extract/decode-pool';
import type { InputSpec } from '../src/images/types';
import { writePngBomb } from '../test/helpers/png-bomb';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const WORKERS = 2;
const SPEC: InputSpec = { size: [224, 224], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'crop' };

function hwm(): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

/** In the child: decode `file` once per worker, print the peak RSS before and after and the outcome. */
async function child(file: string): Promise<void> {
  const pool = new DecodePool(WORKERS);
  const before = hwm();
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: WORKERS }, () => pool.decode([file], [SPEC], [new ArrayBuffer(3 * 224 * 224 * 4)])));
  const seconds = (Date.now() - t0) / 1000;
  await pool.close();
  process.stdout.write(JSON.stringify({ beforeMiB: before, peakMiB: hwm(), seconds, decoded: results.filter((r) => r.kept.length === 1).length, reasons: results.flatMap((r) => r.failures.map((f) => f.reason)) }) + '\n');
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-image-bomb-'));
  try {
    const cases: { name: string; side: number }[] = [{ name: '15000² PNG (225 MP)', side: 15000 }, { name: '6000² PNG (36 MP, under the limit)', side: 6000 }];
    const rows = [];
    for (const c of cases) {
      const file = path.join(dir, `bomb-${c.side}.png`);
      await writePngBomb(file, c.side, c.side);
      const r = spawnSync(process.execPath, [__filename, 'child', file], { encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) throw new Error(`${c.name}: child failed: ${r.stderr}`);
      const m = JSON.parse(r.stdout);
      const perWorker = (m.peakMiB - m.beforeMiB) / WORKERS;
      rows.push({ ...c, bytesOnDisk: fs.statSync(file).size, ...m, perWorkerMiB: perWorker });
      console.error(JSON.stringify(rows[rows.length - 1]));
    }
    const machine = describeMachine();
    const md = [
      `## Image bombs (${new Date().toISOString().slice(0, 10)}, \`node dist/bench/image-bomb.js\`)`,
      '',
      ...machineLines(machine),
      '',
      `A pool of ${WORKERS} decode workers, each given the image once (for a 224² input); peak RSS of a fresh process (VmHWM) before and after.`,
      '',
      '| image | on disk | outcome | peak RSS before → after | per worker | seconds |',
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.name} | ${(r.bytesOnDisk / 1e6).toFixed(2)} MB | ${r.decoded ? `decoded ${r.decoded} of ${WORKERS}` : `refused: "${r.reasons[0]}"`} | ${r.beforeMiB.toFixed(0)} → ${r.peakMiB.toFixed(0)} MiB | ${r.perWorkerMiB.toFixed(0)} MiB | ${r.seconds.toFixed(2)} |`),
      '',
      'Target: ≤ 300 MB per decode worker. Before the limit (issue 14): 1.5 GB for the 15000² PNG with 2 workers.',
      '',
    ].join('\n');
    console.log(md);
    updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'image-bomb', md);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'child') void child(process.argv[3]);
else main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
