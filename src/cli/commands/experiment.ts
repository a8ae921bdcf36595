import * as path from 'node:path';
import { runClassification } from '../../experiments/classification';
import { runFaces } from '../../experiments/faces';
import { reportDoc, writeReport, type ExperimentResults } from '../../experiments/report';
import { ESTIMATORS } from '../../estimators';
import type { ParamValue } from '../../estimators/params';
import { renderMarkdown } from '../../report/document';
import { keepNonFinite } from '../../io/json';
import { UsageError, type Command, type ParsedArgs } from '../command';
import { ESTIMATOR_FLAGS, estimatorParams } from './fit';
import { PRESET_NAMES } from '../../models/presets';

const list = (v: unknown, flag: string) => {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag}: expected a comma-separated list`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
};

const folds = (v: unknown) => list(v, 'folds').map((s) => {
  if (!/^[1-9]\d*$/.test(s)) throw new UsageError(`--folds: expected fold numbers 1, 2, ..., received '${v}'`);
  return Number(s);
});

export const experimentCommand: Command = {
  name: 'experiment',
  summary: "run the paper's all-pairs experiments and write a report (JSON, Markdown, HTML)",
  positional: 'classification|faces',
  notes:
    'classification: needs --images and --models (flags marked "faces" do not apply)\n' +
    'faces: needs --lfw and --models; faces are detected and aligned first (cache in <work>/align), each card\'s\n' +
    '  own crop kept, or with --no-align taken from a centred crop (the card\'s, else 0.55); at least 2 folds\n' +
    '  (each fold\'s threshold is learnt on the others)\n' +
    'models: catalogue ids, cards (.json) or ONNX files (.onnx; --preset or --embedding complete bare files)\n' +
    'maps: --method and the estimator flags of fit (default: classification lstsq, faces ridge with GCV;\n' +
    '  faces --method ridge --lambda task: the penalty of the best verification on held-out identities of the fitting set);\n' +
    '  classification --prior weights: ridge shrunk toward the head-only map of each pair, lambda by held-out\n' +
    '  top-1 through the target head (cv-top1) unless --lambda says otherwise (docs/MAPS.md)',
  flags: {
    models: { type: 'string', value: 'M,M,...', required: true, description: 'a comma-separated list of models (at least two): catalogue ids, cards (.json) or ONNX files (.onnx)' },
    preset: { type: 'string', value: 'NAME', choices: PRESET_NAMES, description: 'complete cards and bare .onnx files with a preset (src/models/presets.ts)' },
    embedding: { type: 'string', value: 'TENSOR', description: 'the embedding tensor of bare .onnx files, by name' },
    images: { type: 'string', value: 'DIR|MANIFEST', description: 'classification: a folder or manifest of labelled images' },
    method: { type: 'string', choices: ESTIMATORS.filter((e) => e !== 'weights'), description: 'the estimator of the fitted maps (default: classification lstsq, faces ridge)' },
    limit: { type: 'number', value: 'N', description: 'classification: use at most N images' },
    lfw: { type: 'string', value: 'DIR', description: "faces: LFW's folder (pairs.txt + images)" },
    'fit-images': { type: 'number', value: 'N', default: 2000, description: 'faces: images of people in no pair to fit the maps on' },
    folds: { type: 'string', value: '1,2,...', description: 'faces: the folds of pairs.txt to evaluate (default: all)' },
    'no-align': { type: 'boolean', description: 'faces: a centred crop instead of detection and alignment' },
    'choose-crops': { type: 'boolean', description: "faces: choose each network's window of the aligned face (and channel order) on the fitting pool first" },
    seed: { type: 'number', value: 'S', default: 0, description: 'the seed of the random splits' },
    work: { type: 'string', value: 'DIR', default: 'embmap-work', description: 'the folder for imported models, embeddings and maps' },
    out: { type: 'string', short: 'o', value: 'DIR', description: 'the report folder (default: <work>/report-<kind>)' },
    json: { type: 'boolean', description: 'print the results as JSON instead of the Markdown summary' },
    // The estimator parameters, as for fit (embmap fit --help describes them).
    ...ESTIMATOR_FLAGS,
  },
  async run(args) {
    const [kind, ...extra] = args.positional;
    if ((kind !== 'classification' && kind !== 'faces') || extra.length) {
      throw new UsageError(`expected 'classification' or 'faces', received ${kind === undefined ? 'nothing' : `'${args.positional.join(' ')}'`}`);
    }
    const work = args.work as string;
    const out = (args.out as string | undefined) ?? path.join(work, `report-${kind}`);
    const seed = args.seed as number;
    const results: ExperimentResults = {};
    const common = { models: list(args.models, 'models'), modelOptions: modelOptions(args), ...estimator(args), work };
    if (kind === 'classification') {
      if (typeof args.images !== 'string') throw new UsageError('--images: expected a folder or manifest, received nothing');
      results.classification = await runClassification({
        images: args.images, ...common,
        ...(args.limit !== undefined ? { limit: args.limit as number } : {}), seed, progress: process.stderr,
      });
    } else {
      if (typeof args.lfw !== 'string') throw new UsageError("--lfw: expected LFW's folder (pairs.txt + images), received nothing");
      for (const flag of ['source-head', 'target-head'] as const) {
        if (args.prior === 'weights' || args[flag] !== undefined) {
          throw new UsageError(`--${args.prior === 'weights' ? 'prior' : flag}: face networks have no classifier heads (a 'weights' prior and the cv-logits/cv-top1 rules need them): use --prior FILE or no prior, received ${args.prior === 'weights' ? "'weights'" : `'${args[flag]}'`}`);
        }
      }
      const chosen = args.folds !== undefined ? folds(args.folds) : undefined;
      if (args['choose-crops'] && args['no-align']) throw new UsageError('--choose-crops: chooses windows of the aligned face, so it needs alignment: drop --no-align or --choose-crops');
      if (chosen && chosen.length < 2) throw new UsageError(`--folds: expected at least 2 fold numbers (each fold's threshold is learnt on the others), received '${args.folds}'`);
      results.faces = await runFaces({
        lfw: args.lfw, ...common, fitImages: args['fit-images'] as number,
        ...(chosen ? { folds: chosen } : {}), align: !args['no-align'], chooseCrops: args['choose-crops'] === true, seed, progress: process.stderr,
      });
    }
    await printAndWrite(results, out, `embmap experiment ${kind}`, args.json === true);
  },
};

/** --method and fit's estimator flags, when given (the experiments' own defaults otherwise). */
function estimator(args: ParsedArgs): { method?: string; params?: Record<string, ParamValue> } {
  // --prior implies ridge; other estimator flags need --method (the defaults differ per experiment).
  const method = (args.method as string | undefined) ?? (args.prior !== undefined ? 'ridge' : undefined);
  if (method === undefined) {
    const given = Object.keys(ESTIMATOR_FLAGS).find((f) => args[f] !== undefined);
    if (given) throw new UsageError(`--${given}: an estimator parameter: give --method too`);
    return {};
  }
  return { method, params: estimatorParams(args, method) };
}

function modelOptions(args: ParsedArgs): { preset?: string; embedding?: string } {
  return { ...(args.preset !== undefined ? { preset: args.preset as string } : {}), ...(args.embedding !== undefined ? { embedding: args.embedding as string } : {}) };
}

/** Writes the report files and prints the Markdown summary (or the results as JSON), then where the files are. */
export async function printAndWrite(results: ExperimentResults, out: string, title: string, json: boolean): Promise<void> {
  const files = await writeReport(results, out, title);
  if (json) {
    process.stdout.write(JSON.stringify({ report: files, ...results }, keepNonFinite, 2) + '\n');
    return;
  }
  process.stdout.write(renderMarkdown(reportDoc(results, title)) + '\n');
  process.stdout.write(`report: ${files.html}\n        ${files.md}\n        ${files.json}\n`);
}
