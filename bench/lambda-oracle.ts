// Why ridge toward the head prior can miss the head-only map on full-resolution photos (issue 17):
// the full-resolution classification experiment's pool, test set and nested curve sizes (the same
// seeds), and for each ordered pair and size the lambda each rule picks ON THE FITTING POOL, with
// the test top-1 of that lambda, next to an ORACLE: the test top-1 of every lambda of the grid
// (measured on the test photos, so never a way to choose; it bounds what any rule on this grid can
// reach). The prior is the library's prior 'weights': the head-only map's weight and bias, the bias
// shrunk with the weight (ridge.ts), so lambda = Infinity is the head-only map itself; with
// --weight-only also the prior of its weight alone (the bias refitted from the pool's means, as
// before issue 17's fix; its columns prefixed "weight only"). Rules, all with folds grouped by
// image: cv-top1 as fitMap runs it (a uniform sample of each fold's rows, the largest lambda within
// one standard error of the best); the same with two and three standard errors; cv-top1 scored on
// the full-resolution rows only (the test's source; all folds' rows of that source, up to the same
// sample size), with one and two standard errors.
// Usage: node dist/bench/lambda-oracle.js --work DIR (the experiment's work folder, embeddings
// cached) [--shared DIR (default ../shared/data) --sizes 500,10500 --pairs K (the first K ordered
// pairs) --weight-only]
// Writes bench/results/lambda-oracle-fullres-bias.json (with --weight-only: lambda-oracle-fullres.json; per pair) and its section of bench/RESULTS.md.
import * as path from 'node:path';
import { SufficientStats } from '../src/engine/stats';
import { FoldDealer, splitOptions } from '../src/estimators/fit-map';
import { RidgeEstimator, type Prior, type ValidationPoint } from '../src/estimators/ridge';
import { WeightsEstimator } from '../src/estimators/weights';
import { foldOf, groupsOf, makeRng, permutation, rowsByFold } from '../src/evaluate/split';
import { accuracy, logits } from '../src/evaluate/classification';
import { curveSizes, nestedRows } from '../src/experiments/curve';
import { headOnlyMap, median, scoreMap, type PairData } from '../src/experiments/classification';
import { poolRows } from '../src/experiments/fit-pool';
import { prepareModels } from '../src/experiments/workspace';
import { writeFileAtomic } from '../src/io/atomic';
import { flag } from './common';
import { describeMachine } from './machine';
import { machineLines, updateResultsFile } from './report';

const MODELS = ['mobilenet-v1-0.25-128', 'mobilenet-v1-0.5-160', 'mobilenet-v1-0.75-192', 'mobilenet-v2-1.0-224', 'mobilenet-v2-1.0-224-tf2'];
const FOLDS = 5, SEED = 0, SAMPLE_ROWS = 2000;
const RULES = ['cv-top1', 'cv-top1, 2 SE', 'cv-top1, 3 SE', 'cv-top1, full-res rows', 'cv-top1, full-res rows, 2 SE', 'oracle (test photos)'] as const;

async function main(): Promise<void> {
  const work = flag('--work');
  if (!work) throw new TypeError('--work: expected the experiment\'s work folder (embeddings cached there), received nothing');
  const shared = flag('--shared') ?? path.join('..', 'shared', 'data');
  const sample = path.join(shared, 'imagenet-sample');
  const models = await prepareModels(MODELS, path.join(work, 'models'));
  const rows = await poolRows({
    images: [path.join(shared, 'tiny-imagenet-val'), sample], testImages: sample, fitFraction: 0.5, views: 10, viewsOn: [sample], seed: SEED,
  }, models, work, process.stderr);
  const nFit = rows.fitItems.length;
  const sizes = curveSizes((flag('--sizes') ?? '500,10500').split(',').map(Number), nFit);
  const subsets = nestedRows(rows.fitImageOf, nFit, sizes, SEED);
  // Full-resolution fit rows: those whose image is a file of the test's source folder.
  const fullRes = Uint8Array.from(rows.fitImageOf, (i) => (path.resolve(rows.fitItems[i].path).startsWith(path.resolve(sample) + path.sep) ? 1 : 0));
  const head = (id: string) => models.find((m) => m.id === id)!.head!;
  const weightOnly = process.argv.includes('--weight-only');
  const variants = weightOnly ? ['', 'weight only, '] : [''];
  const pairs = models.flatMap((a) => models.filter((b) => b !== a).map((b) => [a.id, b.id] as const)).slice(0, Number(flag('--pairs') ?? 20));
  const out: { size: number; rows: number; source: string; target: string; drops: Record<string, number>; lambdas: Record<string, number> }[] = [];
  for (const [a, b] of pairs) {
    const offset = models.find((m) => m.id === b)!.card.card.logits?.labelOffset ?? 0;
    const labels = Int32Array.from(rows.testItems, (it) => Number(it.label) - offset);
    const nativeLogits = await logits(rows.test.get(b)!, head(b));
    const d = { testA: rows.test.get(a)!, headB: head(b), labels, native: accuracy(nativeLogits, labels), nativeLogits } as PairData;
    const headOnly = (await scoreMap(await headOnlyMap({ headA: head(a), headB: head(b) }), d)).dropPoints;
    const heads = (await new WeightsEstimator().fitHeads(head(a), head(b))).fitted;
    // Weight and bias (the library's prior 'weights'); with --weight-only also the weight alone.
    const priors = variants.map((label): [string, Prior] => [label, { weight: heads.weight, ...(label ? {} : { bias: heads.bias }), provenance: { from: 'weights' } }]);
    for (const [s, n] of sizes.entries()) {
      const sub = subsets[s];
      const X = rows.fit.get(a)!.takeRows(sub), Y = rows.fit.get(b)!.takeRows(sub);
      const groups = groupsOf('groups', Array.from(sub, (r) => rows.fitImageOf[r]), sub.length);
      const { params, protocol } = splitOptions({ method: 'ridge', lambda: 'cv-top1', targetHead: head(b), validation: 'none', folds: FOLDS, seed: SEED, sampleRows: SAMPLE_ROWS });
      const dealer = new FoldDealer(sub.length, X.cols, Y.cols, params, protocol, groups);
      await dealer.add(X, Y, 0);
      const k = dealer.folds.length;
      const uniform = dealer.samples.map(({ X, Y }) => ({ X, Y }));
      // The full-resolution rows of each fold (a seeded sample of the same size); a fold without any keeps its uniform sample.
      const byFold = rowsByFold(foldOf(sub.length, k, SEED, groups), k);
      const rng = makeRng(SEED);
      const fullResRows = byFold.map((members, f) => {
        const own = Array.from(members).filter((r) => fullRes[sub[r]]);
        if (own.length === 0) return uniform[f];
        const picked = Array.from(permutation(own.length, rng).subarray(0, Math.ceil(SAMPLE_ROWS / k)), (i) => own[i]);
        return { X: X.takeRows(picked), Y: Y.takeRows(picked) };
      });
      const total = SufficientStats.sum(dealer.folds);
      const drops: Record<string, number> = { 'head-only': headOnly }, picked: Record<string, number> = {};
      for (const [label, prior] of priors) {
        const ridge = (lambda: number | 'cv-top1') => new RidgeEstimator({ lambda, prior, targetHead: head(b) });
        const byTop1 = await ridge('cv-top1').fitFolds(dealer.folds, uniform);
        const byFull = await ridge('cv-top1').fitFolds(dealer.folds, fullResRows);
        // The largest lambda within m standard errors of the best rate of a rule's curve.
        const withinSe = (est: RidgeEstimator, m: number) => {
          const curve = est.fitted.info.validationCurve as ValidationPoint[];
          const se = est.fitted.info.standardError as number, low = Math.min(...curve.map((c) => c.score));
          return curve.filter((c) => c.score <= low + m * se).reduce((x, y) => (y.lambda > x.lambda ? y : x)).lambda;
        };
        // The oracle: every grid lambda's test drop.
        const grid = (byTop1.fitted.info.validationCurve as ValidationPoint[]).map((c) => c.lambda);
        const dropAt = new Map<number, number>();
        for (const lambda of grid) dropAt.set(lambda, (await scoreMap((await ridge(lambda).fitStats(total)).toMap(), d)).dropPoints);
        const rules: Record<(typeof RULES)[number], number> = {
          'cv-top1': byTop1.fitted.info.lambda as number, 'cv-top1, 2 SE': withinSe(byTop1, 2), 'cv-top1, 3 SE': withinSe(byTop1, 3),
          'cv-top1, full-res rows': byFull.fitted.info.lambda as number, 'cv-top1, full-res rows, 2 SE': withinSe(byFull, 2),
          'oracle (test photos)': grid.reduce((x, y) => (dropAt.get(y)! < dropAt.get(x)! ? y : x)),
        };
        drops[`${label}prior kept`] = dropAt.get(Infinity)!;
        for (const [rule, lambda] of Object.entries(rules)) {
          picked[label + rule] = lambda;
          drops[label + rule] = dropAt.get(lambda)!;
        }
      }
      out.push({ size: n, rows: sub.length, source: a, target: b, drops, lambdas: picked });
      process.stderr.write(`${a} -> ${b} at ${n} images: ${JSON.stringify(drops)} lambdas ${JSON.stringify(picked)}\n`);
    }
  }
  const columns = ['head-only', ...variants.flatMap((label) => [`${label}prior kept`, ...RULES.map((r) => label + r)])];
  const fmtLambda = (v: number) => (v === Infinity ? 'kept' : v.toPrecision(2));
  const md = [
    `## Lambda toward the head prior${weightOnly ? '' : ' (weight and bias)'}: rules against an oracle (full-resolution classification)`,
    '',
    ...machineLines(describeMachine()),
    `- \`node dist/bench/lambda-oracle.js ${process.argv.slice(2).join(' ')}\`: the full-resolution classification experiment's pool and 500 test photos (docs/RESULTS.md), ${pairs.length} ordered pairs, folds grouped by image; median top-1 drop (points, against the target's own top-1 on the test photos) over the pairs, the median lambda in brackets; the prior: the head-only map's weight and bias${weightOnly ? ' ("weight only": its weight, the bias refitted from the pool\'s means)' : ''}. **The oracle column chooses lambda on the test photos: a bound, not a rule.**`,
    '',
    `| fitting images (rows) | ${columns.join(' | ')} |`,
    `|---|${columns.map(() => '---|').join('')}`,
    ...sizes.map((n) => {
      const at = out.filter((o) => o.size === n);
      return `| ${n} (${at[0].rows}) | ${columns.map((c) => `${median(at.map((o) => o.drops[c])).toFixed(2)}${c in at[0].lambdas ? ` (${fmtLambda(median(at.map((o) => o.lambdas[c])))})` : ''}`).join(' | ')} |`;
    }),
  ].join('\n');
  process.stdout.write(md + '\n');
  // Per pair and size: every rule's lambda ('Infinity': the prior kept) and test drop.
  const json = JSON.stringify(out, (_, v) => (v === Infinity ? 'Infinity' : v), 1);
  writeFileAtomic(path.join(__dirname, '..', '..', 'bench', 'results', `lambda-oracle-fullres${weightOnly ? '' : '-bias'}.json`), [Buffer.from(json + '\n')]);
  updateResultsFile(path.join(__dirname, '..', '..', 'bench', 'RESULTS.md'), weightOnly ? 'lambda-oracle-fullres' : 'lambda-oracle-fullres-bias', md);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});

