import { pairedEstimator, ESTIMATORS, type PairedParamsFor } from '../../estimators';
import { statsFromNpy } from '../../estimators/streaming';
import { WeightsEstimator, loadHead } from '../../estimators/weights';
import { diagnose } from '../../evaluate/diagnostics';
import { trainTestSplit } from '../../evaluate/split';
import { assertFiniteRows, loadEmbeddings, pairById } from '../../io/embeddings';
import type { LinearMap } from '../../maps/linear-map';
import { UsageError, type Command, type ParsedArgs } from '../command';

export const fitCommand: Command = {
  name: 'fit',
  summary: 'estimate a map from source to target embeddings and write it as .safetensors',
  usage:
    'embmap fit --source A.npy --target B.npy --method lstsq|ridge|procrustes|lowrank|weights ' +
    '[--lambda X|auto|gcv|cv] [--rank K] [--scale] [--no-intercept] [--test-fraction F] [--seed S] ' +
    '[--stream] [--source-model ID] [--target-model ID] --out map.safetensors [--json]\n' +
    '  weights: --source/--target are classifier heads (.safetensors with "weight" C x d and "bias" C)',
  flags: {
    source: 'string', target: 'string', method: 'string', lambda: 'string', rank: 'number', scale: 'boolean',
    'no-intercept': 'boolean', 'test-fraction': 'number', seed: 'number', stream: 'boolean',
    'source-model': 'string', 'target-model': 'string', out: 'string', json: 'boolean',
  },
  async run(args) {
    const source = required(args, 'source'), target = required(args, 'target'), out = required(args, 'out');
    const method = (args.method as string | undefined) ?? 'lstsq';
    if (!ESTIMATORS.includes(method as never)) throw new UsageError(`--method: expected one of ${ESTIMATORS.join(', ')}, received '${method}'`);
    const models = { source: { model: (args['source-model'] as string) ?? source, dim: 0 }, target: { model: (args['target-model'] as string) ?? target, dim: 0 } };
    let map: LinearMap;
    let heldOut: Record<string, unknown> | undefined;
    if (method === 'weights') {
      const est = await new WeightsEstimator().fitHeads(loadHead(source), loadHead(target));
      map = est.toMap(models);
    } else {
      const est = pairedEstimator(method, paramsFrom(args));
      if (args.stream) {
        await est.fitStats(await statsFromNpy(source, target));
      } else {
        const a = loadEmbeddings(source), b = loadEmbeddings(target);
        assertFiniteRows('--source', a);
        assertFiniteRows('--target', b);
        const paired = pairById(a, b);
        const frac = (args['test-fraction'] as number | undefined) ?? 0.1;
        const split = trainTestSplit(paired.ids.length, { testFraction: frac, seed: (args.seed as number | undefined) ?? 0 });
        const fitRows = split.test.length > 0 && split.train.length > 0;
        const X = fitRows ? paired.source.takeRows(split.train) : paired.source;
        const Y = fitRows ? paired.target.takeRows(split.train) : paired.target;
        await est.fit(X, Y);
        if (fitRows) {
          const d = await diagnose(est.toMap(), paired.source.takeRows(split.test), paired.target.takeRows(split.test));
          heldOut = { ...d, r2: undefined, testFraction: frac, seed: (args.seed as number | undefined) ?? 0 };
        }
      }
      map = est.toMap({ ...models, diagnostics: heldOut ? { heldOut } : {} });
    }
    map.save(out);
    const meta = map.metadata;
    if (args.json) {
      process.stdout.write(JSON.stringify({ out, ...meta }, null, 2) + '\n');
      return;
    }
    const info = meta.diagnostics as Record<string, unknown>;
    const lines = [
      `wrote ${out}: ${meta.estimator} map ${meta.source.dim} -> ${meta.target.dim} from ${meta.pairs} pairs`,
      ...['rank', 'rankDeficient', 'lambda', 'selection', 'solver', 'explainedFraction', 'scale', 'headResidual']
        .filter((k) => info[k] !== undefined)
        .map((k) => `  ${k}: ${fmt(info[k])}`),
    ];
    if (info.rankDeficient) lines.push('  warning: the system is rank-deficient (e.g. fewer pairs than dimensions): the minimum-norm map was returned');
    if (heldOut) {
      lines.push(
        `  held-out (${heldOut.rows} pairs): relative residual ${fmt(heldOut.relativeResidual)}, cosine mean ${fmt(heldOut.cosineMean)} ` +
          `median ${fmt(heldOut.cosineMedian)}, mean R² ${fmt(heldOut.r2Mean)}, CKA source/target ${fmt(heldOut.ckaSourceTarget)}`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};

function required(args: ParsedArgs, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name}: expected a value\nusage: ${fitCommand.usage}`);
  return v;
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v);
}

/** The estimator parameters of fit's flags (--lambda, --rank, --scale, --no-intercept, --seed); also the experiments'. */
export function paramsFrom(args: ParsedArgs): PairedParamsFor {
  const p: PairedParamsFor = { intercept: !args['no-intercept'] };
  if (args.lambda !== undefined) {
    const l = String(args.lambda);
    if (l === 'auto' || l === 'gcv') p.lambda = 'gcv';
    else if (l === 'cv') p.lambda = 'cv';
    else if (Number.isFinite(Number(l))) p.lambda = Number(l);
    else throw new UsageError(`--lambda: expected a number, auto, gcv or cv, received '${l}'`);
  }
  if (args.rank !== undefined) p.rank = args.rank as number;
  if (args.scale) p.scale = true;
  if (args.seed !== undefined) p.seed = args.seed as number;
  return p;
}
