// Which augmented views help or hurt the face maps (issue 17 item 4): after `embmap experiment faces
// --views K`, maps of a few ordered pairs are refitted (ridge, lambda by GCV, as the experiment's
// default) on the plain rows plus subsets of the cached views chosen by their parameters (how much
// of the aligned face the crop keeps, the flip), on the first n fitting images of the experiment's
// seeded order, and scored as the experiment scores them: LFW View 2, A mapped into B against B.
// Accuracy only (no timing).
// Usage: node dist/bench/faces-views.js --work DIR (the experiment's, holding its plain and view
// embeddings) [--lfw DIR --pairs A:B,A:B --sizes N,N,...]. Writes its section of bench/RESULTS.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lfwDataset } from '../src/datasets';
import { fitMap, type FitMapOptions } from '../src/estimators/fit-map';
import { cosine, evaluateVerification } from '../src/evaluate/verification';
import { imageOfViewId, viewParams, type ViewParams } from '../src/images/views';
import { loadEmbeddings } from '../src/io/embeddings';
import { flag } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const SUBSETS: { name: string; keep: (v: ViewParams) => boolean }[] = [
  { name: 'plain only', keep: () => false },
  { name: 'all views', keep: () => true },
  { name: '+ views keeping ≥ 85% of the face (flip, jitter)', keep: (v) => v.scale >= 0.85 },
  { name: '+ views keeping ≥ 60%', keep: (v) => v.scale >= 0.6 },
  { name: '+ unflipped views (crop, jitter)', keep: (v) => !v.flip },
];

async function main(): Promise<void> {
  const work = flag('--work');
  if (!work) throw new RangeError('--work: expected the face experiment\'s work folder, received nothing');
  const lfw = lfwDataset(flag('--lfw') ?? path.join('..', 'shared', 'data', 'lfw'));
  const pairs = (flag('--pairs') ?? 'faceres:mobileface,faceapi-resnet:faceres').split(',').map((p) => p.split(':') as [string, string]);
  const sizes = (flag('--sizes') ?? '25,100,250,0').split(',').map(Number);
  const root = path.join(work, 'embeddings');
  const [viewsDir, ...more] = fs.readdirSync(root).filter((d) => /-views\d+-seed\d+-/.test(d));
  if (!viewsDir || more.length) throw new RangeError(`--work: expected one folder of views in ${root}, found ${[viewsDir, ...more].filter(Boolean).join(', ') || 'none'}`);
  const plainDir = viewsDir.slice(0, viewsDir.search(/-\d+-views\d+-/));
  const K = Number(/-views(\d+)-/.exec(viewsDir)![1]), seed = Number(/-seed(\d+)-/.exec(viewsDir)![1]);
  // A network's view file and its plain file share the name (the card's hash): the same window.
  const open = (id: string) => {
    const [file] = fs.readdirSync(path.join(root, viewsDir)).filter((f) => f.startsWith(`${id}-`) && f.endsWith('.npy'));
    return { views: loadEmbeddings(path.join(root, viewsDir, file)), plain: loadEmbeddings(path.join(root, plainDir, file)) };
  };
  const rows: string[] = [];
  for (const [a, b] of pairs) {
    const A = open(a), B = open(b);
    const row = new Map(A.plain.ids.map((id, i) => [id, i]));
    const params = A.views.ids.map((id, r) => viewParams(seed, imageOfViewId(id), r % K));
    const images = A.views.ids.length / K;
    for (const n of sizes.map((s) => (s === 0 || s > images ? images : s))) {
      const cells: string[] = [];
      for (const s of SUBSETS) {
        const fit = params.flatMap((v, r) => (r < n * K && (v === undefined || s.keep(v)) ? [r] : []));
        const { map } = await fitMap(A.views.matrix.takeRows(fit), B.views.matrix.takeRows(fit), { method: 'ridge', lambda: 'gcv', validation: 'none' } as FitMapOptions);
        const mapped = await map.applyBatch(A.plain.matrix);
        const v = evaluateVerification(lfw.pairs!.map((p) => ({ score: cosine(mapped.row(row.get(p.a)!), B.plain.matrix.row(row.get(p.b)!)), same: p.same, fold: p.fold })));
        cells.push(`${(100 * v.accuracy).toFixed(2)} (${fit.length})`);
      }
      rows.push(`| ${a} → ${b} | ${n} | ${cells.join(' | ')} |`);
    }
  }
  const md = [
    '## Face maps fitted on views: which views (issue 17 item 4)',
    '',
    ...machineLines(describeMachine()),
    `- \`node dist/bench/faces-views.js --work ${work}\` after \`embmap experiment faces ... --views ${K} --seed ${seed}\` (docs/RESULTS.md, Faces): ridge (λ by GCV) refitted on the first n fitting images' plain rows plus the views named, scored on LFW View 2's 6,000 pairs (A mapped into B against B, %); rows fitted in brackets`,
    '',
    `| A → B | fitting images | ${SUBSETS.map((s) => s.name).join(' | ')} |`,
    `|---|---|${SUBSETS.map(() => '---|').join('')}`,
    ...rows,
  ].join('\n');
  updateResultsFile(path.join(__dirname, '..', '..', 'bench', 'RESULTS.md'), 'faces-views', md);
  process.stdout.write(md + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
});
