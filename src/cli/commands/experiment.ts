import * as path from 'node:path';
import { COMPARED, type ClassificationConfig, runClassification } from '../../experiments/classification';
import { MAX_VIEWS } from '../../images/views';
import { runFaces } from '../../experiments/faces';
import { reportDoc, writeReport, type ExperimentResults } from '../../experiments/report';
import { ESTIMATORS } from '../../estimators';
import type { ParamValue } from '../../estimators/params';
import { renderMarkdown } from '../../report/document';
import { keepNonFinite } from '../../io/json';
import { UsageError, type Command, type ParsedArgs } from '../command';
import { viewCount } from './extract';
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
    'classification: needs --images and --models (flags marked "faces" do not apply); one --images source is\n' +
    '  split in half (fit / test); --images A,B --test-images B fits on A and half of B and tests on the other\n' +
    '  half, never on a fit image or any view of one; --views K embeds K views of each fit image (cached in\n' +
    '  <work>/embeddings with the plain embeddings, so a rerun only refits); --curve adds the drop against the\n' +
    '  number of fit images with a trend in ln n; --methods lstsq,ridge,ridge-prior compares maps (ridge-prior:\n' +
    '  toward the head-only map\'s weight and bias); k-fold λ rules keep an image\'s views in one fold\n' +
    'faces: needs --lfw and --models; faces are detected and aligned first (cache in <work>/align), each card\'s\n' +
    '  own crop kept, or with --no-align taken from a centred crop (the card\'s, else 0.55); at least 2 folds\n' +
    '  (each fold\'s threshold is learnt on the others); --views K fits on K views of each fitting image\'s\n' +
    '  aligned face (applied before each network\'s own window; the test pairs\' images never)\n' +
    'models: catalogue ids, cards (.json) or ONNX files (.onnx; --preset or --embedding complete bare files)\n' +
    'maps: --method and the estimator flags of fit (default: classification lstsq, faces ridge with GCV;\n' +
    '  faces --method ridge --lambda task: the penalty of the best verification on held-out identities of the fitting set);\n' +
    '  classification --prior weights: ridge shrunk toward the head-only map of each pair (weight and bias), lambda by held-out\n' +
    '  top-1 through the target head (cv-top1) unless --lambda says otherwise (docs/MAPS.md)',
  flags: {
    models: { type: 'string', value: 'M,M,...', required: true, description: 'a comma-separated list of models (at least two): catalogue ids, cards (.json) or ONNX files (.onnx)' },
    preset: { type: 'string', value: 'NAME', choices: PRESET_NAMES, description: 'complete cards and bare .onnx files with a preset (src/models/presets.ts)' },
    embedding: { type: 'string', value: 'TENSOR', description: 'the embedding tensor of bare .onnx files, by name' },
    images: { type: 'string', value: 'SRC,SRC,...', description: 'classification: the images to fit on, folders or manifests of labelled images (one without --test-images: half fitted, half tested)' },
    'test-images': { type: 'string', value: 'DIR|MANIFEST', description: 'classification: the test images; when also in --images, half of them are fitted on and the other half tested' },
    views: { type: 'number', value: 'K', description: `K views of each fit image (the plain one and K - 1 augmentations, 1 to ${MAX_VIEWS}; faces: of the aligned face); test images never` },
    'views-on': { type: 'string', value: 'SRC,...', description: 'classification: the sources of --images whose fit images get views (default all)' },
    curve: { type: 'string', value: 'N,N,...', description: 'classification: also fit on the first N distinct images of a seeded order, for a curve of the drop against N (every image is a point too)' },
    methods: { type: 'string', value: 'M,M,...', description: `classification, instead of --method: compare several maps (${Object.keys(COMPARED).join(', ')})` },
    method: { type: 'string', choices: ESTIMATORS.filter((e) => e !== 'weights'), description: 'the estimator of the fitted maps (default: classification lstsq, faces ridge)' },
    limit: { type: 'number', value: 'N', description: 'classification: use at most N images of each source' },
    lfw: { type: 'string', value: 'DIR', description: "faces: LFW's folder (pairs.txt + images)" },
    'fit-images': { type: 'number', value: 'N', default: 2000, description: 'faces: images of people in no pair to fit the maps on' },
    folds: { type: 'string', value: '1,2,...', description: 'faces: the folds of pairs.txt to evaluate (default: all)' },
    'curve-pair': { type: 'string', value: 'A,B', description: 'faces: the ordered pair of the curves, model ids (default: the pair with the smallest penalty)' },
    'no-align': { type: 'boolean', description: 'faces: a centred crop instead of detection and alignment' },
    'choose-crops': { type: 'boolean', description: "faces: choose each network's window of the aligned face (and channel order) on the fitting pool first" },
    seed: { type: 'number', value: 'S', default: 0, description: "the seed of the random splits and the views (classification: also of the curve's order)" },
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
      const images = list(args.images, 'images');
      if (images.length > 1 && args['test-images'] === undefined) throw new UsageError(`--test-images: expected the test images when --images names ${images.length} sources, received nothing`);
      results.classification = await runClassification({
        images, ...common, ...classificationOptions(args),
        ...(args.limit !== undefined ? { limit: args.limit as number } : {}), seed, progress: process.stderr,
      });
    } else {
      const only = ['test-images', 'views-on', 'curve', 'methods'].find((f) => args[f] !== undefined);
      if (only) throw new UsageError(`--${only}: only applies to the classification experiment`);
      if (typeof args.lfw !== 'string') throw new UsageError("--lfw: expected LFW's folder (pairs.txt + images), received nothing");
      for (const flag of ['source-head', 'target-head'] as const) {
        if (args.prior === 'weights' || args[flag] !== undefined) {
          throw new UsageError(`--${args.prior === 'weights' ? 'prior' : flag}: face networks have no classifier heads (a 'weights' prior and the cv-logits/cv-top1 rules need them): use --prior FILE or no prior, received ${args.prior === 'weights' ? "'weights'" : `'${args[flag]}'`}`);
        }
      }
      const chosen = args.folds !== undefined ? folds(args.folds) : undefined;
      const curvePair = args['curve-pair'] !== undefined ? list(args['curve-pair'], 'curve-pair') : undefined;
      if (curvePair && curvePair.length !== 2) throw new UsageError(`--curve-pair: expected two model ids A,B, received '${args['curve-pair']}'`);
      if (args['choose-crops'] && args['no-align']) throw new UsageError('--choose-crops: chooses windows of the aligned face, so it needs alignment: drop --no-align or --choose-crops');
      if (chosen && chosen.length < 2) throw new UsageError(`--folds: expected at least 2 fold numbers (each fold's threshold is learnt on the others), received '${args.folds}'`);
      results.faces = await runFaces({
        lfw: args.lfw, ...common, fitImages: args['fit-images'] as number,
        ...(chosen ? { folds: chosen } : {}), ...(curvePair ? { curvePair: { source: curvePair[0], target: curvePair[1] } } : {}), ...(args.views !== undefined ? { views: viewCount(args.views, 'fit image') } : {}), align: !args['no-align'], chooseCrops: args['choose-crops'] === true, seed, progress: process.stderr,
      });
    }
    await printAndWrite(results, out, `embmap experiment ${kind}`, args.json === true);
  },
};

/** The classification-only flags: test images, views, the curve, the compared maps. */
function classificationOptions(args: ParsedArgs): Partial<ClassificationConfig> {
  const views = args.views === undefined ? undefined : viewCount(args.views, 'fit image');
  if (args['views-on'] !== undefined && views === undefined) throw new UsageError('--views-on: only applies with --views');
  const curve = args.curve === undefined ? undefined : list(args.curve, 'curve').map((s) => {
    if (!/^\d+$/.test(s) || Number(s) < 2) throw new UsageError(`--curve: expected numbers of images >= 2, received '${s}'`);
    return Number(s);
  });
  const methods = args.methods === undefined ? undefined : list(args.methods, 'methods');
  if (methods) {
    const bad = methods.find((m) => !(m in COMPARED));
    if (bad !== undefined) throw new UsageError(`--methods: expected some of ${Object.keys(COMPARED).join(', ')}, received '${bad}'`);
    const other = ['method', ...Object.keys(ESTIMATOR_FLAGS)].find((f) => args[f] !== undefined);
    if (other) throw new UsageError(`--${other}: not with --methods (each compared map has its own estimator and parameters)`);
  }
  return {
    ...(args['test-images'] !== undefined ? { testImages: args['test-images'] as string } : {}),
    ...(views !== undefined ? { views } : {}),
    ...(args['views-on'] !== undefined ? { viewsOn: list(args['views-on'], 'views-on') } : {}),
    ...(curve ? { curve } : {}),
    ...(methods ? { methods } : {}),
  };
}

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
