// `embmap card probe` on third-party-like bare ONNX face networks (issue 19): each real face
// network in node_modules is imported by embmap's own importer, its card, metadata and producer
// stripped, and probed from a cold alignment cache (wall and CPU time). The probe's card and the
// hand-written one (the catalogue's preprocessing, the experiments' aligned window) are then
// compared on LFW verification: the demo's 160 pairs (4 folds) and, where ../shared exists, View 2
// folds 1-2 (1,200 pairs). Target: within 0.5 points, in at most 2 minutes on 2 cores.
// Writes bench/results/probe.json and the "probe" section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lfwDataset } from '../src/datasets';
import { cosine, evaluateVerification } from '../src/evaluate/verification';
import { ALIGNED_CROP } from '../src/experiments/faces';
import { extract } from '../src/extract';
import { alignImages } from '../src/faces/stage';
import { importModel } from '../src/importers';
import { writeFileAtomic } from '../src/io/atomic';
import { loadEmbeddings } from '../src/io/embeddings';
import type { ModelCard } from '../src/models/card';
import { readModel, writeModel } from '../src/onnx/proto';
import { probeCard } from '../src/probe/probe';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const NETWORKS = (process.env.BENCH_NETWORKS ?? 'mobileface,faceapi-resnet,faceres').split(',');
const SHARED_LFW = path.join(REPO, '..', 'shared', 'data', 'lfw');

async function accuracy(card: ModelCard, onnxPath: string, lfw: string, folds: number[] | undefined, cache: string, dir: string): Promise<{ pairs: number; accuracy: number; auc: number }> {
  const all = lfwDataset(lfw, { subset: 'pairs' });
  const pairs = all.pairs!.filter((p) => !folds || folds.includes(p.fold));
  const used = new Set(pairs.flatMap((p) => [p.a, p.b]));
  const items = all.items.filter((i) => used.has(i.id));
  const { images } = await alignImages(items.map((i) => i.path), { cache, fallback: 'centre' });
  const out = path.join(dir, `${card.id}-${Math.random().toString(36).slice(2)}.npy`);
  await extract({ dataset: { ...all, items: items.map((it, i) => ({ ...it, path: images[i].crop! })), pairs }, targets: [{ model: { card, onnxPath, source: 'bench', origins: {} }, out }], batch: 16, restart: true });
  const E = loadEmbeddings(out).matrix;
  const row = new Map(items.map((it, i) => [it.id, i]));
  const v = evaluateVerification(pairs.map((p) => ({ score: cosine(E.row(row.get(p.a)!), E.row(row.get(p.b)!)), same: p.same, fold: p.fold })));
  return { pairs: pairs.length, accuracy: v.accuracy, auc: v.auc };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-probe-bench-'));
  const evalCache = path.join(dir, 'eval-align');
  const sets: [string, string, number[] | undefined][] = [['demo LFW, 160 pairs', path.join(REPO, 'demo', 'lfw'), undefined]];
  if (fs.existsSync(path.join(SHARED_LFW, 'pairs.txt'))) sets.push(['LFW View 2 folds 1-2', SHARED_LFW, [1, 2]]);
  else console.error(`probe bench: ${SHARED_LFW} not found; only the demo's pairs are evaluated`);
  const rows = [];
  try {
    for (const id of NETWORKS) {
      const imported = importModel({ source: id, out: path.join(dir, 'imported') });
      const m = readModel(imported.onnxPath);
      m.metadataProps = [];
      m.producerName = '';
      m.producerVersion = '';
      m.docString = '';
      const bare = path.join(dir, 'bare', `${id}.onnx`);
      fs.mkdirSync(path.dirname(bare), { recursive: true });
      writeModel(bare, m);
      // A cold start: the probe aligns its faces itself.
      const cpu0 = process.cpuUsage(), t0 = Date.now();
      const probe = await probeCard(bare, { task: 'faces', data: path.join(REPO, 'demo', 'lfw'), alignCache: path.join(dir, `align-${id}`) });
      const cpu = process.cpuUsage(cpu0);
      const wall = (Date.now() - t0) / 1000;
      const window = ALIGNED_CROP[id];
      const hand: ModelCard = { ...imported.card, input: { ...imported.card.input, crop: window.crop, cropCentre: window.centre ?? [0.5, 0.5] } };
      const evals = [];
      for (const [name, lfw, folds] of sets) {
        const [h, p] = [await accuracy(hand, imported.onnxPath, lfw, folds, evalCache, dir), await accuracy(probe.card, bare, lfw, folds, evalCache, dir)];
        evals.push({ set: name, pairs: h.pairs, hand: h, probe: p, differencePoints: 100 * (p.accuracy - h.accuracy) });
      }
      const best = probe.trials[0];
      rows.push({ id, wallSeconds: wall, cpuSeconds: (cpu.user + cpu.system) / 1e6, trials: probe.trials.length, found: `${best.preprocessing}, crop ${best.crop} at [${best.cropCentre}], '${best.tensor}'`, handCard: `${imported.card.input.channels} scale ${imported.card.input.scale} mean [${imported.card.input.mean}] std [${imported.card.input.std}], crop ${window.crop} at [${window.centre ?? [0.5, 0.5]}], '${imported.card.embedding.tensor}'`, evals });
      console.error(`probe bench: ${id}: ${wall.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU; ${evals.map((e) => `${e.set}: hand ${(100 * e.hand.accuracy).toFixed(2)}%, probe ${(100 * e.probe.accuracy).toFixed(2)}%`).join('; ')}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const machine = describeMachine();
  const result = { date: new Date().toISOString(), machine, loadAverage: os.loadavg(), rows };
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  writeFileAtomic(path.join(REPO, 'bench', 'results', 'probe.json'), [Buffer.from(JSON.stringify(result, null, 2) + '\n')]);
  const pct = (v: number) => (100 * v).toFixed(2);
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'probe', [
    `## Bring your own network: \`embmap card probe\` on bare face networks (${result.date.slice(0, 10)})`,
    '',
    ...machineLines(machine),
    `- load average when it finished: ${result.loadAverage.map((l) => l.toFixed(1)).join(', ')} (the machine is shared: CPU time is the steadier measure; on an idle 2-core machine wall time ≈ CPU time / 2)`,
    '- command: `node dist/bench/probe.bench.js` (networks one after the other; each probe from a cold alignment cache)',
    '- networks: the real face networks in node_modules, imported to ONNX by `embmap import`, then card, metadata and producer removed: bare files',
    '- hand-written card: the catalogue\'s preprocessing with the faces experiment\'s aligned window (ALIGNED_CROP); probe card: what `embmap card probe --faces` wrote',
    '',
    '| network | probe wall s | probe CPU s | trials | probe found | hand-written card | set | pairs | hand % | probe % | probe − hand (points) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.flatMap((r) => r.evals.map((e, k) => k === 0
      ? `| ${r.id} | ${r.wallSeconds.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.trials} | ${r.found} | ${r.handCard} | ${e.set} | ${e.pairs} | ${pct(e.hand.accuracy)} | ${pct(e.probe.accuracy)} | ${e.differencePoints.toFixed(2)} |`
      : `| | | | | | | ${e.set} | ${e.pairs} | ${pct(e.hand.accuracy)} | ${pct(e.probe.accuracy)} | ${e.differencePoints.toFixed(2)} |`)),
    '',
  ].join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
