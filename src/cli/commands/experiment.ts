import * as path from 'node:path';
import { runClassification } from '../../experiments/classification';
import { runFaces } from '../../experiments/faces';
import { reportDoc, writeReport, type ExperimentResults } from '../../experiments/report';
import { ESTIMATORS } from '../../estimators';
import { renderMarkdown } from '../../report/document';
import { UsageError, type Command, type ParsedArgs } from '../command';
import { paramsFrom } from './fit';

const list = (v: unknown, flag: string) => {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag}: expected a comma-separated list`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
};

export const experimentCommand: Command = {
  name: 'experiment',
  summary: "run the paper's all-pairs experiments and write a report (JSON, Markdown, HTML)",
  usage:
    'embmap experiment classification --images DIR|MANIFEST --models M,M,... [--limit N] [ESTIMATOR] [--work DIR] [--out DIR]\n' +
    '       embmap experiment faces --lfw DIR --models M,M,... [--fit-images N] [--folds 1,2,...] [--no-align] [ESTIMATOR] [--work DIR] [--out DIR]\n' +
    '  M: a catalogue id, a card (.json) or an ONNX file (.onnx; --preset NAME or --embedding TENSOR complete bare files)\n' +
    '  ESTIMATOR: --method lstsq|ridge|procrustes|lowrank [--lambda X|gcv|cv] [--rank K] [--scale] [--no-intercept], as for fit\n' +
    '    (default: classification lstsq, faces ridge with GCV)\n' +
    '  faces: detected and aligned first (cache in <work>/align), each card\'s own crop kept; --no-align: a centred\n' +
    '  crop (the card\'s, else 0.55) instead; at least 2 folds (each fold\'s threshold is learnt on the others)',
  flags: {
    images: 'string', lfw: 'string', models: 'string', method: 'string', lambda: 'string', rank: 'number', scale: 'boolean', 'no-intercept': 'boolean',
    preset: 'string', embedding: 'string', limit: 'number', 'fit-images': 'number', folds: 'string', 'no-align': 'boolean', work: 'string', out: 'string', seed: 'number',
  },
  async run(args) {
    const kind = args.positional[0];
    const work = (args.work as string | undefined) ?? 'embmap-work';
    const out = (args.out as string | undefined) ?? path.join(work, `report-${kind}`);
    const results: ExperimentResults = {};
    const common = { models: list(args.models, 'models'), modelOptions: modelOptions(args), ...estimator(args), work };
    if (kind === 'classification') {
      if (typeof args.images !== 'string') throw new UsageError(`--images: expected a folder or manifest\nusage: ${experimentCommand.usage}`);
      results.classification = await runClassification({
        images: args.images, ...common,
        ...(args.limit !== undefined ? { limit: args.limit as number } : {}), seed: (args.seed as number | undefined) ?? 0, progress: process.stderr,
      });
    } else if (kind === 'faces') {
      if (typeof args.lfw !== 'string') throw new UsageError(`--lfw: expected LFW's folder (pairs.txt + images)\nusage: ${experimentCommand.usage}`);
      const folds = args.folds ? list(args.folds, 'folds').map(Number) : undefined;
      if (folds && (folds.length < 2 || folds.some((f) => !Number.isInteger(f) || f < 1))) {
        throw new UsageError(`--folds: expected at least 2 fold numbers (1-based; each fold's threshold is learnt on the others), received '${args.folds}'`);
      }
      results.faces = await runFaces({
        lfw: args.lfw, ...common, fitImages: (args['fit-images'] as number | undefined) ?? 2000,
        ...(folds ? { folds } : {}), align: !args['no-align'], seed: (args.seed as number | undefined) ?? 0, progress: process.stderr,
      });
    } else {
      throw new UsageError(`expected 'classification' or 'faces', received ${kind === undefined ? 'nothing' : `'${kind}'`}\nusage: ${experimentCommand.usage}`);
    }
    printAndWrite(results, out, `embmap experiment ${kind}`);
  },
};

/** --method and fit's estimator flags, when given (the experiments' own defaults otherwise). */
function estimator(args: ParsedArgs): { method?: string; params?: ReturnType<typeof paramsFrom> } {
  const method = args.method as string | undefined;
  if (method === undefined) return {};
  if (method === 'weights' || !ESTIMATORS.includes(method as never)) throw new UsageError(`--method: expected one of ${ESTIMATORS.filter((e) => e !== 'weights').join(', ')}, received '${method}'`);
  return { method, params: paramsFrom(args) };
}

function modelOptions(args: ParsedArgs): { preset?: string; embedding?: string } {
  return { ...(args.preset !== undefined ? { preset: args.preset as string } : {}), ...(args.embedding !== undefined ? { embedding: args.embedding as string } : {}) };
}

/** Prints the Markdown summary and writes the report files. */
export function printAndWrite(results: ExperimentResults, out: string, title: string): void {
  const files = writeReport(results, out, title);
  process.stdout.write(renderMarkdown(reportDoc(results, title)) + '\n');
  process.stdout.write(`report: ${files.html}\n        ${files.md}\n        ${files.json}\n`);
}
