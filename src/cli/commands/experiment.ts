import * as path from 'node:path';
import { runClassification } from '../../experiments/classification';
import { runFaces } from '../../experiments/faces';
import { reportDoc, writeReport, type ExperimentResults } from '../../experiments/report';
import { renderMarkdown } from '../../report/document';
import { UsageError, type Command } from '../command';

const list = (v: unknown, flag: string) => {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag}: expected a comma-separated list`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
};

export const experimentCommand: Command = {
  name: 'experiment',
  summary: "run the paper's all-pairs experiments and write a report (JSON, Markdown, HTML)",
  usage:
    'embmap experiment classification --images DIR|MANIFEST --models ID,ID,... [--method lstsq|ridge] [--prior weights] [--limit N] [--work DIR] [--out DIR]\n' +
    '       embmap experiment faces --lfw DIR --models ID,ID,... [--fit-images N] [--folds 1,2,...] [--no-align] [--work DIR] [--out DIR]\n' +
    '  --prior weights: ridge shrunk toward the head-only map (lambda by GCV)\n' +
    '  faces: detected and aligned first (cache in <work>/align); --no-align: a centred crop of 0.55 instead',
  flags: { images: 'string', lfw: 'string', models: 'string', method: 'string', prior: 'string', limit: 'number', 'fit-images': 'number', folds: 'string', 'no-align': 'boolean', work: 'string', out: 'string', seed: 'number' },
  async run(args) {
    const kind = args.positional[0];
    const work = (args.work as string | undefined) ?? 'embmap-work';
    const out = (args.out as string | undefined) ?? path.join(work, `report-${kind}`);
    const results: ExperimentResults = {};
    if (kind === 'classification') {
      if (typeof args.images !== 'string') throw new UsageError(`--images: expected a folder or manifest\nusage: ${experimentCommand.usage}`);
      const prior = args.prior as string | undefined;
      if (prior !== undefined && prior !== 'weights') throw new UsageError(`--prior: expected weights (the head-only map), received '${prior}'`);
      const method = (args.method as string | undefined) ?? (prior ? 'ridge' : 'lstsq');
      if (method !== 'lstsq' && method !== 'ridge') throw new UsageError(`--method: expected lstsq or ridge, received '${method}'`);
      if (prior && method !== 'ridge') throw new UsageError(`--prior: shrinks a ridge map, received --method ${method}`);
      results.classification = await runClassification({
        images: args.images, models: list(args.models, 'models'), work, method, ...(prior ? { prior } : {}),
        ...(args.limit !== undefined ? { limit: args.limit as number } : {}), seed: (args.seed as number | undefined) ?? 0, progress: process.stderr,
      });
    } else if (kind === 'faces') {
      if (typeof args.lfw !== 'string') throw new UsageError(`--lfw: expected LFW's folder (pairs.txt + images)\nusage: ${experimentCommand.usage}`);
      results.faces = await runFaces({
        lfw: args.lfw, models: list(args.models, 'models'), work, fitImages: (args['fit-images'] as number | undefined) ?? 2000,
        ...(args.folds ? { folds: list(args.folds, 'folds').map(Number) } : {}), align: !args['no-align'], seed: (args.seed as number | undefined) ?? 0, progress: process.stderr,
      });
    } else {
      throw new UsageError(`expected 'classification' or 'faces', received ${kind === undefined ? 'nothing' : `'${kind}'`}\nusage: ${experimentCommand.usage}`);
    }
    printAndWrite(results, out, `embmap experiment ${kind}`);
  },
};

/** Prints the Markdown summary and writes the report files. */
export function printAndWrite(results: ExperimentResults, out: string, title: string): void {
  const files = writeReport(results, out, title);
  process.stdout.write(renderMarkdown(reportDoc(results, title)) + '\n');
  process.stdout.write(`report: ${files.html}\n        ${files.md}\n        ${files.json}\n`);
}
