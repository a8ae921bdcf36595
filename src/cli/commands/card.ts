import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../io/atomic';
import { checkOutputs } from '../../io/outputs';
import { probeCard, type ProbeTask } from '../../probe/probe';
import { UsageError, type Command } from '../command';
import { DEMO } from './demo';

export const cardCommand: Command = {
  name: 'card',
  summary: "find a bare ONNX network's preprocessing by trying it on labelled data, and write its card",
  positional: 'probe MODEL.onnx|CARD.json',
  notes:
    'Embeds a small labelled set under each plausible preprocessing, crop and embedding tensor, ranks them by\n' +
    'verification AUC (--faces: LFW pairs, aligned as the experiments align them) or top-1 (--classes: ImageNet-labelled\n' +
    'photos), and writes the best as a card with the evidence beside it (<card>.probe.json). The faces card\'s crop is a\n' +
    'window of embmap\'s aligned faces: use it with extract --align and the faces experiment (docs/YOUR-MODEL.md).',
  flags: {
    faces: { type: 'boolean', description: 'a face embedding network: probe on LFW pairs' },
    classes: { type: 'boolean', description: 'an ImageNet classifier: probe on labelled photos' },
    data: { type: 'string', value: 'DIR', description: "the labelled set (default: the demo's 160 LFW pairs, or its 600 ImageNet photos)" },
    out: { type: 'string', short: 'o', value: 'CARD.json', description: 'the card to write (default <model>.card.json beside the model)' },
    work: { type: 'string', value: 'DIR', default: 'embmap-work', description: 'holds the alignment cache <work>/align, shared with the experiments' },
    embedding: { type: 'string', value: 'TENSOR', description: 'the embedding tensor, by name (default: every candidate of the graph is scored)' },
    threads: { type: 'number', value: 'N', description: "ONNX Runtime's threads" },
    json: { type: 'boolean', description: 'print the card, the files written and the ranked trials as JSON' },
  },
  async run(args) {
    const [sub, model] = args.positional;
    if (sub !== 'probe') throw new UsageError(`expected 'probe', received ${sub === undefined ? 'nothing' : `'${sub}'`}`);
    if (!model || args.positional.length > 2) throw new UsageError(`MODEL: expected one model (.onnx, or a partial card .json), received ${args.positional.slice(1).join(' ') || 'none'}`);
    if (!fs.existsSync(model)) throw new UsageError(`MODEL: expected an existing file, ${model} does not exist`);
    if (!!args.faces === !!args.classes) throw new UsageError('--faces, --classes: expected one of them (what the network was trained on)');
    const task: ProbeTask = args.faces ? 'faces' : 'classes';
    const isCard = path.extname(model).toLowerCase() === '.json';
    let partial: Record<string, unknown> = {};
    if (isCard) {
      try {
        partial = JSON.parse(fs.readFileSync(model, 'utf8'));
      } catch (err) {
        throw new UsageError(`${model}: expected a JSON card, ${(err as Error).message}`);
      }
    }
    if (isCard && typeof partial.onnx !== 'string') throw new UsageError(`${model}: onnx: expected the model's file name (relative to the card)`);
    const onnxPath = path.resolve(isCard ? path.join(path.dirname(model), partial.onnx as string) : model);
    const out = path.resolve((args.out as string | undefined) ?? onnxPath.replace(/(\.onnx)?$/i, '.card.json'));
    const evidence = out.replace(/(\.json)?$/i, '.probe.json');
    checkOutputs([{ name: '--out', file: out, extensions: ['.json'], companions: [evidence] }], [{ name: 'MODEL', file: model }, { name: 'onnx', file: onnxPath }]);
    // The card names its model relative to its own folder, and only below it.
    const relative = path.relative(path.dirname(out), onnxPath);
    if (relative.startsWith('..') || path.isAbsolute(relative)) throw new UsageError(`--out: expected a card in the model's folder or above it (a card names its model below its own folder), received ${out}`);
    const work = args.work as string;
    const data = (args.data as string | undefined) ?? path.join(DEMO, task === 'faces' ? 'lfw' : 'imagenet');
    const result = await probeCard(onnxPath, {
      task, data, alignCache: path.join(work, 'align'), ...(args.embedding !== undefined ? { embedding: args.embedding as string } : {}),
      ...(args.threads !== undefined ? { threads: args.threads as number } : {}), log: (line) => process.stderr.write(`embmap card probe: ${line}\n`),
    }, partial);
    const card = { ...result.card, onnx: relative };
    writeFileAtomic(evidence, [Buffer.from(JSON.stringify({ model: onnxPath, task, data, metric: result.metric, final: result.final, origins: result.origins, seconds: result.seconds, trials: result.trials }, null, 2) + '\n')]);
    card.source = `${card.source} (evidence: ${path.basename(evidence)})`;
    writeFileAtomic(out, [Buffer.from(JSON.stringify(card, null, 2) + '\n')]);
    if (args.json) {
      process.stdout.write(JSON.stringify({ out, evidence, ...result, card }, null, 2) + '\n');
      return;
    }
    const say = (line: string) => process.stdout.write(line + '\n');
    const top = result.trials.filter((t) => t.stage === 3).slice(0, 5);
    say(`best of ${result.trials.length} trials (${result.metric}):`);
    for (const t of top) say(`  ${t.score.toFixed(4)}  ${t.preprocessing}, crop ${t.crop} at [${t.cropCentre}], '${t.tensor}'${t.labelOffset ? `, label offset ${t.labelOffset}` : ''} (${t.n} ${task === 'faces' ? 'pairs' : 'images'})`);
    const f = result.final;
    say(`on all ${f.n} ${task === 'faces' ? 'pairs' : 'images'}: ${result.metric} ${f.score.toFixed(4)}, accuracy ${(100 * f.accuracy).toFixed(2)}%${f.accuracyStd !== undefined ? ` ± ${(100 * f.accuracyStd).toFixed(2)} (${f.folds} folds)` : ''}`);
    say(`wrote ${out} (${result.seconds.toFixed(1)} s); evidence ${evidence}`);
  },
};
