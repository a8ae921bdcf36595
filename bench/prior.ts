// Ridge toward the head prior on the demo's classification task (issue 17 items 2 and 5): every
// ordered pair of the demo's Coral MobileNets, maps fitted on 50..300 of the demo's fitting half of
// the ImageNet images (nested subsets), top-1 drop against the target's own accuracy on the other
// half, for plain ridge (GCV), ridge toward the head-only map with lambda by each rule (gcv and cv
// on the mapped embeddings, cv-logits and cv-top1 through the target head) and the head-only map.
// Accuracy first; the wall time of each rule's whole run is indicative (one process, one after
// another, on whatever else the machine runs).
// Usage: node dist/bench/prior.js [--work DIR] (embeddings cached there; default embmap-demo,
// shared with `embmap demo`) [--images DIR --limit N --curve N,N,... --rules ridge,gcv,cv,cv-logits,cv-top1]
// (another ImageNet-labelled set, e.g. ../shared/data/tiny-imagenet-val: its own section).
// Writes its section of bench/RESULTS.md.
import * as os from 'node:os';
import * as path from 'node:path';
import { CLASSIFIERS, DEMO, DEMO_CURVE } from '../src/cli/commands/demo';
import { runClassification, type ClassificationResult } from '../src/experiments/classification';
import { flag } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

// Plain ridge first (the table's reference), cv-top1 (the default) last.
const RULES: { key: string; name: string; params: Record<string, string> }[] = [
  { key: 'ridge', name: 'ridge (gcv)', params: { lambda: 'gcv' } },
  { key: 'gcv', name: 'toward prior, gcv', params: { prior: 'weights', lambda: 'gcv' } },
  { key: 'cv', name: 'toward prior, cv', params: { prior: 'weights', lambda: 'cv' } },
  { key: 'cv-logits', name: 'toward prior, cv-logits', params: { prior: 'weights', lambda: 'cv-logits' } },
  { key: 'cv-top1', name: 'toward prior, cv-top1 (default)', params: { prior: 'weights' } },
];

async function main(): Promise<void> {
  const work = flag('--work') ?? 'embmap-demo';
  const images = flag('--images') ?? path.join(DEMO, 'imagenet');
  const curve = flag('--curve')?.split(',').map(Number) ?? DEMO_CURVE;
  const keys = flag('--rules')?.split(',') ?? RULES.map((r) => r.key);
  const rules = RULES.filter((r) => keys.includes(r.key));
  if (rules[0]?.key !== 'ridge' || rules[rules.length - 1].key !== 'cv-top1') throw new RangeError(`--rules: expected ridge, cv-top1 and any of gcv, cv, cv-logits, received ${keys.join(',')}`);
  const limit = flag('--limit');
  const base = {
    images, models: Object.keys(CLASSIFIERS), work, curve, ...(limit ? { limit: Number(limit) } : {}),
    from: Object.fromEntries(Object.entries(CLASSIFIERS).map(([id, f]) => [id, path.join(DEMO, 'models', f)])),
  };
  const demo = flag('--images') === undefined;
  const label = demo ? 'demo/imagenet' : path.basename(path.resolve(images));
  await runClassification({ ...base, curve: [] }); // embeddings cached before anything is timed
  const runs: { name: string; r: ClassificationResult; seconds: number }[] = [];
  for (const rule of rules) {
    const t0 = process.hrtime.bigint();
    const r = await runClassification({ ...base, method: 'ridge', params: rule.params });
    runs.push({ name: rule.name, r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
  }
  const first = runs[0].r;
  const key = (p: { source: string; target: string }) => `${p.source} | ${p.target}`;
  const lambda = (v: number | undefined) => (v === undefined ? '' : v === Infinity ? ' (kept)' : ` (${v.toPrecision(2)})`);
  const pairRows = first.pairs.map((p, k) =>
    `| ${key(p)} | ${runs.map(({ r }) => `${r.pairs[k].dropPoints.toFixed(1)}${r === first ? '' : lambda(r.pairs[k].lambda)}`).join(' | ')} | ${p.weightsDropPoints.toFixed(1)} |`);
  const curveRows = curve.map((n, c) =>
    `| ${n} | ${runs.map(({ r }) => `${r.curve![c].medianDropPoints.toFixed(2)} / ${r.curve![c].worstOverWeightsPoints.toFixed(1)}`).join(' | ')} | ${first.medianWeightsDropPoints.toFixed(2)} |`);
  const top1 = runs[runs.length - 1].r;
  const others = runs.slice(1, -1).flatMap(({ r }) => r.pairs.map((p) => p.lambda ?? NaN).filter(Number.isFinite));
  const load = os.loadavg()[0];
  const missed = top1.curve!.filter((c) => c.medianDropPoints > c.medianWeightsDropPoints + 0.5).map((c) => c.images);
  const md = [
    `## Ridge toward the head prior (${demo ? 'demo classification' : label})`,
    '',
    ...machineLines(describeMachine()),
    `- \`node dist/bench/prior.js${demo ? '' : process.argv.slice(2).filter((a, k, all) => all[k - 1] !== '--work' && a !== '--work').map((a) => ` ${a}`).join('')}\`: ${first.models.length} Coral MobileNets, ${first.fitImages} fitting / ${first.testImages} test images of ${label} (one test image = ${(100 / first.testImages).toFixed(2)} points), ${first.pairs.length} ordered pairs; top-1 drop in points against the target's own top-1 on the test images; maps fitted on nested subsets of ${curve.join(', ')} fitting images`,
    '',
    `Per pair, ${first.fitImages} fitting images (lambda in brackets; kept: lambda = Infinity, the prior itself):`,
    '',
    `| source | target | ${runs.map((r) => r.name).join(' | ')} | head-only |`,
    `|---|---|${runs.map(() => '---|').join('')}---|`,
    ...pairRows,
    `| **median** | | ${runs.map(({ r }) => `**${r.medianDropPoints.toFixed(1)}**`).join(' | ')} | **${first.medianWeightsDropPoints.toFixed(1)}** |`,
    '',
    'Median drop / worst pair minus its head-only drop, against fitting images:',
    '',
    `| fitting images | ${runs.map((r) => r.name).join(' | ')} | head-only |`,
    `|---|${runs.map(() => '---|').join('')}---|`,
    ...curveRows,
    `| wall time of the run (s) | ${runs.map((r) => r.seconds.toFixed(0)).join(' | ')} | |`,
    '',
    `Wall times include every size and pair (${(curve.filter((n) => n !== first.fitImages).length + 1) * first.pairs.length} fits per rule), one rule after another; the load average at the end was ${load.toFixed(1)} on ${os.cpus().length} cores (a shared machine), so they are indicative only.`,
    '',
    `cv-top1 (k-fold top-1 agreement with the target's own top-1 through its head, with the one-standard-error rule toward the prior) ${missed.length ? `misses the issue's target at ${missed.join(', ')} images and meets it at the other sizes` : "meets the issue's target at every size measured"}` +
      `: median drop within 0.5 points of the head-only map's or better (${top1.curve!.map((c) => c.medianDropPoints.toFixed(2)).join(', ')} vs ${first.medianWeightsDropPoints.toFixed(2)}), ` +
      `and at ${first.fitImages} images ${Math.abs(top1.medianDropPoints - first.medianWeightsDropPoints) <= 2 ? 'within' : 'not within'} 2 points of it. ` +
      `It kept the prior on ${top1.curve!.map((c) => `${c.pairs.filter((p) => p.lambda === Infinity).length} of ${c.pairs.length}`).join(', ')} pairs at ${curve.join(', ')} images. ` +
      (others.length ? `The other rules toward the prior chose lambdas of ${Math.min(...others).toPrecision(2)}-${Math.max(...others).toPrecision(2)} at ${first.fitImages} images.` : ''),
    ...(demo ? [
      '',
      'GCV and cv score the mapped embeddings and cv-logits the squared error of the logits; none of them is top-1, and the lambdas they choose cost top-1 points here. ' +
        'Top-1 over a few hundred held-out rows is noisy, so without the one-standard-error rule cv-top1 also picked such lambdas on some pairs ' +
        '(median drops 1.5, 2.0, 1.0, 2.3 at 50-300 images in a run during development). At this scale the images rarely carry more than the heads do. ' +
        'Single pairs still differ from their head-only drop by a few test images either way; part of that is the bias ' +
        '(the prior kept refits the bias from the means, the head-only map takes it from the heads) and part the 300-image test set.',
    ] : []),
  ].join('\n');
  process.stdout.write(md + '\n');
  updateResultsFile(path.join(__dirname, '..', '..', 'bench', 'RESULTS.md'), demo ? 'prior' : `prior-${label}`, md);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
