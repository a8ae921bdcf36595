// Faithfulness of the TFLite importer (issue: importers): each Coral MobileNet classifier is
// imported to ONNX and run on the 1,000-photo ImageNet sample (one photo per class, ../shared),
// preprocessed by its card; top-1/top-5 are set beside the model's published ImageNet top-1. A
// broken import (wrong padding, layout or dequantisation) lands tens of points below.
// Writes bench/results/import.json and the "import" section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeImage, inputSize, preprocessInto } from '../src/images/preprocess';
import { CATALOGUE, importModel, locate } from '../src/importers';
import { writeFileAtomic } from '../src/io/atomic';
import * as ort from 'onnxruntime-node';
import { REPO } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const SAMPLE = path.join(REPO, '..', 'shared', 'data', 'imagenet-sample');
const LIMIT = Number(process.env.BENCH_IMAGES ?? 1000);
const BATCH = 25;

interface Row {
  id: string;
  file: string;
  images: number;
  top1: number;
  top5: number;
  publishedTop1: number;
  seconds: number;
}

async function main(): Promise<void> {
  const labelsFile = path.join(SAMPLE, 'labels.tsv');
  if (!fs.existsSync(labelsFile)) {
    console.error(`import-accuracy: ${labelsFile} not found; this benchmark needs ../shared (the ImageNet sample and the Coral models)`);
    process.exitCode = 1;
    return;
  }
  const items = fs.readFileSync(labelsFile, 'utf8').trim().split('\n').slice(0, LIMIT).map((l) => {
    const [file, , label] = l.split('\t');
    return { file: path.join(SAMPLE, 'images', file), label: Number(label) };
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-import-bench-'));
  const rows: Row[] = [];
  try {
    for (const entry of CATALOGUE.filter((e) => e.kind === 'tflite' && e.publishedTop1 !== undefined)) {
      const r = importModel({ source: entry.id, out: dir });
      const { input, logits } = r.card;
      const session = await ort.InferenceSession.create(r.onnxPath);
      const per = inputSize(input);
      let top1 = 0, top5 = 0;
      const start = process.hrtime.bigint();
      for (let i = 0; i < items.length; i += BATCH) {
        const batch = items.slice(i, i + BATCH);
        const x = new Float32Array(batch.length * per);
        for (const [k, item] of batch.entries()) await preprocessInto(await decodeImage(item.file), input, x, k * per);
        const out = await session.run({ [input.name]: new ort.Tensor('float32', x, [batch.length, 3, ...input.size]) });
        const all = out[logits!.tensor].data as Float32Array;
        for (const [k, item] of batch.entries()) {
          const l = all.subarray(k * logits!.classes, (k + 1) * logits!.classes);
          const target = item.label - logits!.labelOffset!; // logit index of the true class
          const above = l.reduce((n, v, j) => n + (v >= l[target] && j !== target ? 1 : 0), 0); // ties count against
          if (above === 0) top1++;
          if (above < 5) top5++;
        }
      }
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const row = { id: entry.id, file: path.basename(locate(entry).file), images: items.length, top1: (100 * top1) / items.length, top5: (100 * top5) / items.length, publishedTop1: entry.publishedTop1!, seconds };
      console.log(`${row.id}: top-1 ${row.top1.toFixed(1)}% top-5 ${row.top5.toFixed(1)}% (published top-1 ${row.publishedTop1}%) ${seconds.toFixed(1)} s`);
      rows.push(row);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const machine = describeMachine();
  const date = new Date().toISOString();
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  writeFileAtomic(path.join(REPO, 'bench', 'results', 'import.json'), [Buffer.from(JSON.stringify({ date, machine, rows }, null, 2) + '\n')]);
  updateResultsFile(path.join(REPO, 'bench', 'RESULTS.md'), 'import', [
    `## Import faithfulness: Coral MobileNets on the ImageNet sample (${date.slice(0, 10)})`,
    '',
    ...machineLines(machine),
    '- command: `node dist/bench/import-accuracy.js`; each model imported by `embmap import ID` (TFLite uint8 -> float32 ONNX, weights dequantised, activations in float) and run by ONNX Runtime on CPU',
    `- images: \`../shared/data/imagenet-sample\`, ${items.length} photos (one per ILSVRC-2012 class, short side 256), preprocessed by the card: short side to the input size, centre crop, (pixel - zero point) x scale of the quantised input`,
    '',
    '| model | file | top-1 % | top-5 % | published top-1 % | difference (points) | s per 1,000 images |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.id} | ${r.file} | ${r.top1.toFixed(1)} | ${r.top5.toFixed(1)} | ${r.publishedTop1} | ${(r.top1 - r.publishedTop1 >= 0 ? '+' : '') + (r.top1 - r.publishedTop1).toFixed(1)} | ${((r.seconds * 1000) / r.images).toFixed(1)} |`),
    '',
    'The published figures are for the full 50,000-image validation set, TF-slim\'s preprocessing (87.5% central crop) and',
    'quantised arithmetic. One photo per class is a 1,000-image sample (standard error about 1.5 points) of undocumented',
    'origin; where every model lands above its published figure, by more for the larger models, the sample is easier than',
    'the validation set (photos seen in training would do that). What the table checks is that each import keeps its',
    'model\'s accuracy and the models\' order; a broken import (padding, layout, dequantisation) falls tens of points below.',
  ].join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
