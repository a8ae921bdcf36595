import { mergeStatsDir } from '../../cluster/stats-files';
import { fitFromFolds, fitMap, splitOptions, type FitMapOptions, type FitMapResult } from '../../estimators/fit-map';
import { ESTIMATORS, PARAMETERS, checkParams, cliFlag, paramUsage, type ParamValue } from '../../estimators/params';
import { fitMapFromNpy } from '../../estimators/streaming';
import { loadHead } from '../../estimators/weights';
import { viewGroups } from '../../images/views';
import { assertFiniteRows, loadEmbeddings, pairById } from '../../io/embeddings';
import { checkOutputs, type NamedPath } from '../../io/outputs';
import { UsageError, flagSpec, type Command, type FlagSpec, type ParsedArgs } from '../command';

// The estimator parameters' flags and their help come from their declaration (estimators/params.ts).
const PARAM_SPECS = PARAMETERS.filter((s) => !s.libraryOnly);

/** One flag per parameter name; a name declared for several methods with different types (lambda) is read as a string. */
function paramFlags(): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const s of PARAM_SPECS) {
    const type = s.type.kind === 'boolean' ? 'boolean' : s.type.kind === 'number' ? 'number' : 'string';
    const { value, about } = paramUsage(s);
    const flag = cliFlag(s), prev = out[flag];
    out[flag] = prev === undefined
      ? { type, ...(value ? { value } : {}), description: about }
      : { type: prev.type === type ? type : 'string', value: [prev.value, value].filter(Boolean).join(' or '), description: `${prev.description}; ${about}` };
  }
  return out;
}

/** The estimator parameters' flags, shared with the experiments. */
export const ESTIMATOR_FLAGS = paramFlags();

export const fitCommand: Command = {
  name: 'fit',
  summary: 'estimate a map from source to target embeddings and write it as .safetensors',
  notes:
    'The map is fitted on every pair; held-out diagnostics come from a K-fold cross-fit on the statistics\n' +
    '(--folds, default 5; folds are scored until they hold --score-pairs pairs), or from a plain split with\n' +
    '--test-fraction F in (0, 1) (0: none). The map file records which.\n' +
    'weights: --source/--target are classifier heads (.safetensors with "weight" C x d and "bias" C).\n' +
    '--stats DIR instead of --source/--target: the shard statistics of `embmap extract --queue ... --stats SRC:TGT`,\n' +
    'merged (no embedding is read; no held-out diagnostics).',
  flags: {
    source: { type: 'string', value: 'A.npy', description: "embeddings in the source space (.npy or .safetensors; weights: the source network's head)" },
    target: { type: 'string', value: 'B.npy', description: "embeddings in the target space, paired with --source by id (weights: the target network's head)" },
    method: { type: 'string', choices: ESTIMATORS, default: 'lstsq', description: 'the estimator' },
    out: { type: 'string', short: 'o', value: 'MAP.safetensors', required: true, description: 'the map file to write' },
    stream: { type: 'boolean', description: 'read the .npy files in row chunks (sets larger than memory; rows paired by position)' },
    stats: { type: 'string', value: 'DIR', description: 'fit from merged shard statistics instead of embeddings' },
    folds: { type: 'number', value: 'K', description: 'folds of the cross-fit diagnostics (default 5)' },
    'score-pairs': { type: 'number', value: 'N', description: 'pairs the cross-fit scores at least, fold by fold (default 10000; every fold of a smaller set)' },
    seed: { type: 'number', value: 'S', description: 'the seed of the folds or the split (default 0)' },
    'test-fraction': { type: 'number', value: 'F', description: 'score a plain held-out split of this fraction instead of the cross-fit' },
    'no-diagnostics': { type: 'boolean', description: 'no held-out diagnostics (the fastest fit)' },
    'source-model': { type: 'string', value: 'ID', description: 'the source network, as recorded in the map (default: --source)' },
    'target-model': { type: 'string', value: 'ID', description: 'the target network, as recorded in the map (default: --target)' },
    json: { type: 'boolean', description: "print the map's metadata as JSON" },
    ...ESTIMATOR_FLAGS,
  },
  async run(args) {
    // --out is required and --method one of ESTIMATORS (default lstsq): the flag parser checked both.
    const out = args.out as string, method = args.method as string;
    const { map, warnings } = await (args.stats !== undefined ? fitFromStats(args, method, out) : fitFromFiles(args, method, out));
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
    if (fit.groupedBy !== undefined) {
      lines.push(`  ${fit.protocol === 'split' ? 'split' : 'folds'} grouped by ${fit.groupedBy}: ${fit.groups} groups, each kept whole${fit.leaveOneGroupOut ? ' (fewer than the folds asked for: one group per fold)' : ''}`);
    }
    const h = info.heldOut as Record<string, unknown> | undefined;
    if (h) {
      const scored = fit.scoredFolds === undefined ? 'every pair' : `${fit.scoredFolds} fold${fit.scoredFolds === 1 ? '' : 's'} scored, ${h.rows} pairs`;
      const how = fit.protocol === 'crossfit' ? `${fit.folds}-fold cross-fit, ${scored}; cosine on ${h.sampleRows}` : `split, ${h.rows} pairs`;
      lines.push(
        `  held-out (${how}): relative residual ${fmt(h.relativeResidual)}, mean R² ${fmt(h.r2Mean)}, ` +
          `cosine mean ${fmt(h.cosineMean)} median ${fmt(h.cosineMedian)}, CKA source/target ${fmt(h.ckaSourceTarget)}`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};

/** The map from paired embedding files (or classifier heads, for weights). */
async function fitFromFiles(args: ParsedArgs, method: string, out: string): Promise<FitMapResult> {
  const source = required(args, 'source'), target = required(args, 'target');
  checkOutputs([{ name: '--out', file: out, extensions: ['.safetensors'] }], inputsOf(args));
  const options = optionsFrom(args, method);
  if (method === 'weights') return fitMap(loadHead(source, '--source'), loadHead(target, '--target'), options);
  if (args.stream) return fitMapFromNpy(source, target, options);
  const a = loadEmbeddings(source), b = loadEmbeddings(target);
  assertFiniteRows(`--source ${source}`, a);
  assertFiniteRows(`--target ${target}`, b);
  const paired = pairById(a, b);
  // Views of one image (ids id#vK) stay in one fold, as fitMapFromNpy does from the sidecar.
  const byImage = viewGroups(paired.ids);
  return fitMap(paired.source, paired.target, byImage ? { ...options, groups: byImage, groupedBy: 'image' } : options);
}

/** The map from a cluster run's shard statistics (embmap extract --queue --stats), merged: no embedding is read. */
async function fitFromStats(args: ParsedArgs, method: string, out: string): Promise<FitMapResult> {
  const given = ['source', 'target', 'stream', 'test-fraction', 'folds', 'score-pairs', 'seed', 'no-diagnostics'].find((f) => args[f] !== undefined);
  if (given) throw new UsageError(`--${given}: not with --stats (the merged statistics are the data; no held-out diagnostics)`);
  if (method === 'weights') throw new UsageError(`--method: expected a paired estimator with --stats, received 'weights'`);
  const dir = required(args, 'stats');
  checkOutputs([{ name: '--out', file: out, extensions: ['.safetensors'] }], inputsOf(args));
  const { stats, meta } = mergeStatsDir(dir);
  const { method: checked, params, protocol } = splitOptions({
    ...optionsFrom(args, method), validation: 'none',
    sourceModel: (args['source-model'] as string | undefined) ?? meta.source, targetModel: (args['target-model'] as string | undefined) ?? meta.target,
  });
  return fitFromFolds(checked, params, { folds: [stats], samples: [] }, protocol);
}

/** Every file the command reads, by its flag: the data (--source, --target or --stats) and the file-valued parameters (a prior map, heads). */
function inputsOf(args: ParsedArgs): NamedPath[] {
  const files = PARAM_SPECS.filter((s) => s.type.kind === 'map' || s.type.kind === 'head').map(cliFlag);
  return ['source', 'target', 'stats', ...files]
    .filter((flag) => typeof args[flag] === 'string' && !PARAM_SPECS.some((s) => cliFlag(s) === flag && s.type.kind === 'map' && s.type.values.includes(args[flag] as string)))
    .map((flag) => ({ name: `--${flag}`, file: args[flag] as string }));
}

function required(args: ParsedArgs, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name}: expected ${flagSpec(fitCommand.flags[name]).description}, received nothing`);
  return v;
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) && Math.abs(v) > 1 ? String(v) : v.toPrecision(4)) : String(v);
}

/** The estimator flags as parameters of `method`, checked against its declaration (fit and the experiments). */
export function estimatorParams(args: ParsedArgs, method: string): Record<string, ParamValue> {
  const params: Record<string, unknown> = {};
  for (const s of PARAM_SPECS) {
    const v = args[cliFlag(s)];
    if (v === undefined || params[s.name] !== undefined) continue;
    if (s.type.kind === 'boolean') params[s.name] = s.default === true ? !v : v;
    else if (typeof v === 'string' && (s.type.kind === 'number' || s.type.kind === 'number|choice') && v.trim() !== '' && Number.isFinite(Number(v))) params[s.name] = Number(v);
    else if (v === 'Infinity' && s.type.kind === 'number|choice' && s.type.infinite) params[s.name] = Infinity;
    else params[s.name] = v;
  }
  try {
    return checkParams(method, params, '--');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The flags as fitMap options: parameters checked against the method's declaration, then the protocol. */
function optionsFrom(args: ParsedArgs, method: string): FitMapOptions {
  const params = estimatorParams(args, method);
  const frac = args['test-fraction'] as number | undefined;
  if (frac !== undefined && !(frac >= 0 && frac < 1)) throw new UsageError(`--test-fraction: expected a number in [0, 1), received ${frac}`);
  if (frac !== undefined && args.stream) {
    throw new UsageError('--test-fraction: a plain split needs the rows in memory: drop --stream (streamed fits get cross-fit diagnostics) or drop --test-fraction');
  }
  if (frac !== undefined && args['no-diagnostics']) throw new UsageError('--test-fraction: not with --no-diagnostics (a split is a diagnostic)');
  const scorePairs = args['score-pairs'];
  if (scorePairs !== undefined && !(Number.isInteger(scorePairs) && (scorePairs as number) >= 1)) throw new UsageError(`--score-pairs: expected an integer >= 1, received ${scorePairs}`);
  for (const k of ['folds', 'score-pairs', 'seed'] as const) {
    if (args[k] !== undefined && (frac === 0 || args['no-diagnostics'])) throw new UsageError(`--${k}: not with ${frac === 0 ? '--test-fraction 0' : '--no-diagnostics'} (no held-out diagnostics)`);
  }
  for (const k of ['folds', 'score-pairs'] as const) {
    if (args[k] !== undefined && frac !== undefined) throw new UsageError(`--${k}: not with --test-fraction (a plain split has no folds)`);
  }
  const validation = args['no-diagnostics'] || frac === 0 ? 'none' : frac !== undefined ? 'split' : undefined;
  if (method === 'weights') {
    for (const k of ['test-fraction', 'folds', 'score-pairs', 'seed', 'stream', 'no-diagnostics'] as const) {
      if (args[k] !== undefined) throw new UsageError(`--${k}: method 'weights' fits from classifier heads, not pairs: no held-out diagnostics or streaming`);
    }
  }
  return {
    method: method as FitMapOptions['method'],
    ...params,
    ...(method === 'weights' ? {} : { validation, testFraction: validation === 'split' ? frac : undefined }),
    folds: args.folds as number | undefined,
    scorePairs: args['score-pairs'] as number | undefined,
    seed: args.seed as number | undefined,
    sourceModel: (args['source-model'] as string | undefined) ?? (args.source as string),
    targetModel: (args['target-model'] as string | undefined) ?? (args.target as string),
  };
}
