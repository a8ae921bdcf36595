// Ridge toward the head prior on the demo's classification task (issue 17 item 2): every ordered
// pair of the demo's Coral MobileNets, maps fitted on the demo's fitting half of the ImageNet
// images, top-1 drop against the target's own accuracy on the other half, for plain ridge (GCV),
// ridge toward the head-only map (GCV) and the head-only map itself. Accuracy, not time: one run.
// Usage: node dist/bench/prior.js [--work DIR] (embeddings cached there; default embmap-demo,
// shared with `embmap demo`). Writes its section of bench/RESULTS.md.
import * as path from 'node:path';
import { CLASSIFIERS, DEMO } from '../src/cli/commands/demo';
import { median, runClassification, type ClassificationResult } from '../src/experiments/classification';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

async function main(): Promise<void> {
  const i = process.argv.indexOf('--work');
  const work = i > 0 ? process.argv[i + 1] : 'embmap-demo';
  const base = {
    images: path.join(DEMO, 'imagenet'), models: Object.keys(CLASSIFIERS), work,
    from: Object.fromEntries(Object.entries(CLASSIFIERS).map(([id, f]) => [id, path.join(DEMO, 'models', f)])),
  };
  const plain = await runClassification({ ...base, method: 'ridge' });
  const prior = await runClassification({ ...base, method: 'ridge', params: { prior: 'weights' } });
  // Fixed lambdas toward the prior: does any lambda reach the head-only map (chosen on the test images: an oracle, not a method)?
  const sweep: string[] = [];
  for (let e = 0; e <= 8; e += 2) {
    const r = await runClassification({ ...base, method: 'ridge', params: { prior: 'weights', lambda: 10 ** e } });
    sweep.push(`| 1e${e} | ${median(r.pairs.map((p) => p.dropPoints)).toFixed(1)} | ${Math.max(...r.pairs.map((p) => p.dropPoints - p.weightsDropPoints)).toFixed(1)} |`);
  }
  const key = (p: { source: string; target: string }) => `${p.source} | ${p.target}`;
  const byPair = new Map(prior.pairs.map((p) => [key(p), p]));
  const rows = plain.pairs.map((p) => {
    const q = byPair.get(key(p))!;
    return `| ${key(p)} | ${p.dropPoints.toFixed(1)} | ${q.dropPoints.toFixed(1)} | ${p.weightsDropPoints.toFixed(1)} |`;
  });
  const med = (r: ClassificationResult) => median(r.pairs.map((p) => p.dropPoints));
  const worse = prior.pairs.filter((p) => p.dropPoints > p.weightsDropPoints + 0.5).length;
  const md = [
    '## Ridge toward the head prior (demo classification)',
    '',
    ...machineLines(describeMachine()),
    `- \`node dist/bench/prior.js\`: ${plain.models.length} Coral MobileNets, ${plain.fitImages} fitting / ${plain.testImages} test images of demo/imagenet, ${plain.pairs.length} ordered pairs; top-1 drop in points against the target's own top-1 on the test images (lambda by GCV)`,
    '',
    '| source | target | ridge | ridge toward head prior | head-only |',
    '|---|---|---|---|---|',
    ...rows,
    `| **median** | | **${med(plain).toFixed(1)}** | **${med(prior).toFixed(1)}** | **${plain.medianWeightsDropPoints.toFixed(1)}** |`,
    '',
    `Pairs where ridge toward the prior is more than 0.5 points worse than the head-only map: ${worse} of ${prior.pairs.length}.`,
    '',
    'Fixed lambda toward the head prior (chosen by looking at the test images, so an oracle, not a method):',
    '',
    '| lambda | median drop | worst pair minus its head-only drop |',
    '|---|---|---|',
    ...sweep,
    '',
    'GCV chooses lambda by the error of the mapped embeddings, not by top-1, and on 300 fitting images it',
    'chooses too small a lambda for top-1: ridge toward the prior cuts plain ridge\'s median drop but stays',
    'above the head-only map, while a large fixed lambda (1e6-1e8 here) matches or beats it. So the',
    'issue\'s target (within 0.5 points of the head-only map on every pair) is not met by GCV. Choosing lambda',
    'in the target head\'s metric (k-fold error of the logits, i.e. of Y W_B^T: argmin-equivalent to',
    'transforming Sxy by W_B^T in foldErrors) is the next step; it is not implemented yet.',
  ].join('\n');
  process.stdout.write(md + '\n');
  updateResultsFile(path.join(__dirname, '..', '..', 'bench', 'RESULTS.md'), 'prior', md);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
