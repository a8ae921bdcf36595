// Extraction throughput (issue: embedding extraction). In one run, interleaved so the machine's
// drifting speed hits both alike, for the same model and batch size:
//  (a) the ONNX Runtime session alone on pre-made input tensors (images decoded and normalised beforehand);
//  (b) the whole pipeline: extract() from image files (decode + resize + normalise in worker threads,
//      inference, checkpoint writes, final .npy + sidecar), model loading included.
// Model and images from bench/extract-inputs.ts: a ResNet-18-shaped CNN with random weights at
// 224 x 224, and LFW (or Tiny-ImageNet, or the fixtures).
// Writes bench/results/extract.json and the "extract" section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRng } from '../src/evaluate/split';
import { extract } from '../src/extract/pipeline';
import { ModelRunner } from '../src/extract/runner';
import { decodeImage, inputSize, preprocessInto } from '../src/images/preprocess';
import { writeFileAtomic } from '../src/io/atomic';
import { cardFromOnnx } from '../src/models/load';
import { convNet } from '../test/helpers/cnn';
import { writeModel } from '../src/onnx/proto';
import { REPO } from './common';
import { benchImages, resnet18Like } from './extract-inputs';
import { describeMachine, type Machine } from './machine';
import { machineLines, updateResultsFile } from './report';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 384);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4); // even: ABBA pairs
// One decode worker: this machine has few cores and ONNX Runtime's threads take them.
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);

async function main(): Promise<void> {
  const machine = describeMachine();
  // Other work on the machine competes with the decoder and ONNX Runtime alike: recorded beside the figures.
  const loadBefore = os.loadavg()[0];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-extract-bench-'));
  try {
    const net = convNet({ input: { size: [224, 224] }, layers: resnet18Like(), head: { classes: 1000 }, rng: makeRng(2020) });
    const modelFile = path.join(dir, 'resnet18like.onnx');
    writeModel(modelFile, net.model);
    const card = await cardFromOnnx(modelFile, { preset: 'imagenet' });
    const { dataset, source } = benchImages(IMAGES);
    const n = dataset.items.length;
    console.error(`${n} images from ${source}; batch ${BATCH}; ${ROUNDS} rounds`);

    // (a)'s input: every batch preprocessed beforehand, exactly as the pipeline would.
    const spec = (({ name: _n, ...s }) => s)(card.card.input);
    const per = inputSize(spec);
    const batches: { data: Float32Array; n: number }[] = [];
    const cpuMs = (since: NodeJS.CpuUsage) => {
      const c = process.cpuUsage(since);
      return (c.user + c.system) / 1000;
    };
    const decodeStart = process.cpuUsage();
    for (let s = 0; s < n; s += BATCH) {
      const m = Math.min(BATCH, n - s);
      const data = new Float32Array(m * per);
      for (let i = 0; i < m; i++) await preprocessInto(await decodeImage(dataset.items[s + i].path), spec, data, i * per);
      batches.push({ data, n: m });
    }
    const decodeCpuPerImage = cpuMs(decodeStart) / n;
    const runner = await ModelRunner.open(card, { logits: true });
    await runner.run(batches[0].data, batches[0].n); // warm-up: first-run allocations

    // The pipeline twice over: end to end (model loading included) and its processing rate after loading.
    const sessionAlone: number[] = [], pipeline: number[] = [], processing: number[] = [], setup: number[] = [];
    let summary: Awaited<ReturnType<typeof extract>> | undefined;
    const sessionCpuPerImage: number[] = [];
    const sessionRun = async () => {
      const t = process.hrtime.bigint();
      const c = process.cpuUsage();
      for (const b of batches) await runner.run(b.data, b.n);
      sessionAlone.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
      sessionCpuPerImage.push(cpuMs(c) / n);
    };
    const pipelineRun = async () => {
      const t = process.hrtime.bigint();
      summary = await extract({
        dataset, batch: BATCH, workers: WORKERS, restart: true,
        targets: [{ model: card, out: path.join(dir, 'emb.npy'), logits: path.join(dir, 'logits.npy') }],
      });
      pipeline.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
      processing.push(summary.imagesPerSecond);
      setup.push(summary.setupSeconds);
    };
    for (let round = 0; round < ROUNDS; round++) {
      // ABBA order: a drift in the machine's speed during a pair of rounds hits both contenders alike.
      if (round % 2 === 0) await sessionRun().then(pipelineRun);
      else await pipelineRun().then(sessionRun);
      const r = round;
      console.error(`round ${r + 1}: session alone ${sessionAlone[r].toFixed(1)} img/s, pipeline ${pipeline[r].toFixed(1)} img/s end to end, ${processing[r].toFixed(1)} after ${setup[r].toFixed(2)} s loading`);
    }
    await runner.close();

    // Over all rounds: total images / total time, per contender.
    const overall = (rates: number[]) => rates.length / rates.reduce((s, r) => s + 1 / r, 0);
    const results = {
      date: new Date().toISOString(),
      machine,
      model: { name: 'ResNet-18-like CNN, random weights (test/helpers/cnn.ts)', input: [224, 224], embeddingDim: card.card.embedding.dim, classes: 1000 },
      images: { count: n, source },
      batch: BATCH,
      workers: WORKERS,
      sessionAlone,
      pipeline,
      processing,
      setupSeconds: setup,
      overall: {
        sessionAlone: overall(sessionAlone),
        pipeline: overall(pipeline),
        processing: overall(processing),
        ratio: overall(pipeline) / overall(sessionAlone),
        processingRatio: overall(processing) / overall(sessionAlone),
      },
      perRoundRatio: pipeline.map((p, i) => p / sessionAlone[i]),
      perRoundProcessingRatio: processing.map((p, i) => p / sessionAlone[i]),
      skipped: summary?.skipped.length ?? 0,
      loadAverage: { before: loadBefore, after: os.loadavg()[0] },
      // CPU-bound on every core, decoding can only hide behind inference up to this ratio.
      cpuPerImageMs: { decode: decodeCpuPerImage, session: Math.min(...sessionCpuPerImage) },
    };
    const outDir = path.join(REPO, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    writeFileAtomic(path.join(outDir, 'extract.json'), [Buffer.from(JSON.stringify(results, null, 2) + '\n')]);
    updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'extract', render(results));
    console.log(JSON.stringify(results.overall));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function render(r: {
  date: string; machine: Machine; images: { count: number; source: string }; batch: number; workers: number;
  sessionAlone: number[]; pipeline: number[]; processing: number[]; setupSeconds: number[];
  overall: { sessionAlone: number; pipeline: number; processing: number; ratio: number; processingRatio: number };
  perRoundRatio: number[]; perRoundProcessingRatio: number[]; loadAverage: { before: number; after: number };
  cpuPerImageMs: { decode: number; session: number };
}): string {
  const f = (v: number) => v.toFixed(1);
  const g = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  return [
    `## Extraction throughput (${r.date.slice(0, 10)})`,
    '',
    ...machineLines(r.machine),
    `- command: \`node dist/bench/extract.bench.js\` (${r.sessionAlone.length} rounds, the contenders interleaved in ABBA order; images/s over all rounds = total images / total time)`,
    `- model: a ResNet-18-shaped CNN (7x7/2 stem, four stages 64..512, GAP, 1000-way Gemm head) written by \`test/helpers/cnn.ts\` with **random weights** at 224x224 — no imported model of this size existed yet; throughput depends on the shapes, not the weights. Embedding (512-d) and logits fetched together.`,
    `- images: ${r.images.count} from ${r.images.source}; batch ${r.batch}; ONNX Runtime CPU provider, its default threads; ${r.workers} decode worker(s); 1-minute load average ${r.loadAverage.before.toFixed(1)} before, ${r.loadAverage.after.toFixed(1)} after (other work on the same cores).`,
    '',
    '| contender | images/s (all rounds) | per round |',
    '|---|---|---|',
    `| (a) ONNX Runtime session alone, pre-made tensors | ${f(r.overall.sessionAlone)} | ${r.sessionAlone.map(f).join(', ')} |`,
    `| (b) \`extract()\` end to end: model load + files → decode/resize/normalise (worker) → inference → checkpoint → .npy + sidecar | ${f(r.overall.pipeline)} | ${r.pipeline.map(f).join(', ')} |`,
    `| (b') the same runs after model loading (${g(r.setupSeconds)} s) | ${f(r.overall.processing)} | ${r.processing.map(f).join(', ')} |`,
    '',
    `CPU per image: decode + resize + normalise ${r.cpuPerImageMs.decode.toFixed(1)} ms, inference ${r.cpuPerImageMs.session.toFixed(1)} ms (all its threads) — decoding adds ${((100 * r.cpuPerImageMs.decode) / r.cpuPerImageMs.session).toFixed(0)}% to the work; the session alone kept ${((r.cpuPerImageMs.session * r.overall.sessionAlone) / 1000).toFixed(2)} of the ${r.machine.cores} cores busy, and the decoder runs in the cycles inference leaves.`,
    '',
    `Ratio to (a): end to end **${r.overall.ratio.toFixed(2)}** (per round ${g(r.perRoundRatio)}); after loading **${r.overall.processingRatio.toFixed(2)}** (per round ${g(r.perRoundProcessingRatio)}). Target ≥ 0.9.`,
    '',
  ].join('\n');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
