import { fitMap, type FitMapOptions } from '../../estimators/fit-map';
import { ESTIMATORS, PARAMETERS, checkParams, cliFlag, describeParam } from '../../estimators/params';
import { fitMapFromNpy } from '../../estimators/streaming';
import { loadHead } from '../../estimators/weights';
import { assertFiniteRows, loadEmbeddings, pairById } from '../../io/embeddings';
import { UsageError, type Command, type FlagType, type ParsedArgs } from '../command';

// The estimator parameters' flags and usage come from their declaration (estimators/params.ts).
const PARAM_SPECS = PARAMETERS.filter((s) => !s.libraryOnly);

/** One flag per parameter name; a name declared with different types (lambda) is read as a string. */
function paramFlags(): Record<string, FlagType> {
  const out: Record<string, FlagType> = {};
  for (const s of PARAM_SPECS) {
    const t: FlagType = s.type.kind === 'boolean' ? 'boolean' : s.type.kind === 'number' ? 'number' : 'string';
    const flag = cliFlag(s);
    out[flag] = out[flag] === undefined || out[flag] === t ? t : 'string';
  }
  return out;
}

const FLAGS: Record<string, FlagType> = {
  source: 'string', target: 'string', method: 'string', out: 'string', json: 'boolean', stream: 'boolean',
  'source-model': 'string', 'target-model': 'string',
  'test-fraction': 'number', folds: 'number', seed: 'number', 'no-diagnostics': 'boolean',
  ...paramFlags(),
};

const USAGE =
  `embmap fit --source A.npy --target B.npy [--method ${ESTIMATORS.join('|')}] --out map.safetensors\n` +
  '    [--folds K] [--seed S] [--test-fraction F | --no-diagnostics] [--stream] [--source-model ID] [--target-model ID] [--json]\n' +
  '  The map is fitted on every pair; held-out diagnostics come from a K-fold cross-fit on the statistics (default K = 5).\n' +
  '  --test-fraction F in (0, 1): fit on the rest and score a plain held-out split instead (0: no held-out diagnostics).\n' +
  '  weights: --source/--target are classifier heads (.safetensors with "weight" C x d and "bias" C).\n' +
  '  estimator parameters:\n' +
  PARAM_SPECS.map((s) => `    ${describeParam(s)}`).join('\n');

export const fitCommand: Command = {
  name: 'fit',
  summary: 'estimate a map from source to target embeddings and write it as .safetensors',
  usage: USAGE,
  flags: FLAGS,
  async run(args) {
    const source = required(args, 'source'), target = required(args, 'target'), out = required(args, 'out');
    const method = (args.method as string | undefined) ?? 'lstsq';
    if (!(ESTIMATORS as readonly string[]).includes(method)) throw new UsageError(`--method: expected one of ${ESTIMATORS.join(', ')}, received '${method}'`);
    const options = optionsFrom(args, method);
    let result;
    if (method === 'weights') {
      result = await fitMap(loadHead(source, '--source'), loadHead(target, '--target'), options);
    } else if (args.stream) {
      result = await fitMapFromNpy(source, target, options);
    } else {
      const a = loadEmbeddings(source), b = loadEmbeddings(target);
      assertFiniteRows(`--source ${source}`, a);
      assertFiniteRows(`--target ${target}`, b);
      const paired = pairById(a, b);
      result = await fitMap(paired.source, paired.target, options);
    }
    const { map, warnings } = result;
    map.save(out);
    const meta = map.metadata;
    if (args.json) {
      process.stdout.write(JSON.stringify({ out, ...meta }, null, 2) + '\n');
      return;
    }
    const info = meta.diagnostics as Record<string, unknown>;
    const fit = info.fit as Record<string, unknown>;
    const lines = [
      `wrote ${out}: ${meta.estimator} map ${meta.source.dim} -> ${meta.target.dim} from ${meta.pairs} pairs` +
        (fit.protocol === 'split' ? ` (a split: ${fit.testPairs} more held out)` : ''),
      ...['rank', 'lambda', 'selection', 'solver', 'explainedFraction', 'scale', 'headResidual']
        .filter((k) => info[k] !== undefined)
        .map((k) => `  ${k}: ${fmt(info[k])}`),
      ...warnings.map((w) => `  warning: ${w}`),
    ];
    const h = info.heldOut as Record<string, unknown> | undefined;
    if (h) {
      const how = fit.protocol === 'crossfit' ? `${fit.folds}-fold cross-fit, every pair; cosine on ${h.sampleRows}` : `split, ${h.rows} pairs`;
      lines.push(
        `  held-out (${how}): relative residual ${fmt(h.relativeResidual)}, mean R² ${fmt(h.r2Mean)}, ` +
          `cosine mean ${fmt(h.cosineMean)} median ${fmt(h.cosineMedian)}, CKA source/target ${fmt(h.ckaSourceTarget)}`,
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
  return typeof v === 'number' ? (Number.isInteger(v) && Math.abs(v) > 1 ? String(v) : v.toPrecision(4)) : String(v);
}

/** The flags as fitMap options: parameters checked against the method's declaration, then the protocol. */
function optionsFrom(args: ParsedArgs, method: string): FitMapOptions {
  const params: Record<string, unknown> = {};
  for (const s of PARAM_SPECS) {
    const v = args[cliFlag(s)];
    if (v === undefined || params[s.name] !== undefined) continue;
    if (s.type.kind === 'boolean') params[s.name] = s.default === true ? !v : v;
    else if (typeof v === 'string' && (s.type.kind === 'number' || s.type.kind === 'number|choice') && v.trim() !== '' && Number.isFinite(Number(v))) params[s.name] = Number(v);
    else params[s.name] = v;
  }
  try {
    checkParams(method, params, '--');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const frac = args['test-fraction'] as number | undefined;
  if (frac !== undefined && !(frac >= 0 && frac < 1)) throw new UsageError(`--test-fraction: expected a number in [0, 1), received ${frac}`);
  if (frac !== undefined && args.stream) {
    throw new UsageError('--test-fraction: a plain split needs the rows in memory: drop --stream (streamed fits get cross-fit diagnostics) or drop --test-fraction');
  }
  if (frac !== undefined && args['no-diagnostics']) throw new UsageError('--test-fraction: not with --no-diagnostics (a split is a diagnostic)');
  for (const k of ['folds', 'seed'] as const) {
    if (args[k] !== undefined && (frac === 0 || args['no-diagnostics'])) throw new UsageError(`--${k}: not with ${frac === 0 ? '--test-fraction 0' : '--no-diagnostics'} (no held-out diagnostics)`);
  }
  if (args.folds !== undefined && frac !== undefined) throw new UsageError('--folds: not with --test-fraction (a plain split has no folds)');
  const validation = args['no-diagnostics'] || frac === 0 ? 'none' : frac !== undefined ? 'split' : undefined;
  if (method === 'weights') {
    for (const k of ['test-fraction', 'folds', 'seed', 'stream', 'no-diagnostics'] as const) {
      if (args[k] !== undefined) throw new UsageError(`--${k}: method 'weights' fits from classifier heads, not pairs: no held-out diagnostics or streaming`);
    }
  }
  return {
    method: method as FitMapOptions['method'],
    ...params,
    ...(method === 'weights' ? {} : { validation, testFraction: validation === 'split' ? frac : undefined }),
    folds: args.folds as number | undefined,
    seed: args.seed as number | undefined,
    sourceModel: (args['source-model'] as string | undefined) ?? (args.source as string),
    targetModel: (args['target-model'] as string | undefined) ?? (args.target as string),
  };
}
