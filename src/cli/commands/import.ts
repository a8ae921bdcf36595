import { CATALOGUE, IMPORT_KINDS, type ImportKind, importModel, locate } from '../../importers';
import type { Preprocessing } from '../../importers/catalogue';
import { UsageError, type Command, type ParsedArgs } from '../command';

export const importCommand: Command = {
  name: 'import',
  summary: 'convert a pretrained TF.js, TFLite or face-api model to ONNX with its model card',
  usage:
    'embmap import [tfjs|tflite|faceapi] SOURCE --out DIR [--id ID] [--from PATH] [--embedding NODE] [--logits NODE] ' +
    '[--channels RGB|BGR] [--scale S] [--mean R,G,B] [--std R,G,B] [--resize crop|stretch|pad] [--json]\n' +
    '  SOURCE: a catalogue id (see embmap import --list) or a model file: model.json (tfjs), .tflite, or\n' +
    '  face_recognition_model-weights_manifest.json (faceapi); --from PATH: a catalogue model\'s file or its folder\n' +
    'embmap import --list [--json]',
  flags: {
    out: 'string', id: 'string', from: 'string', embedding: 'string', logits: 'string', channels: 'string', scale: 'number',
    mean: 'string', std: 'string', resize: 'string', list: 'boolean', json: 'boolean',
  },
  run(args) {
    if (args.list) return list(Boolean(args.json));
    const pos = args.positional;
    const kind = IMPORT_KINDS.includes(pos[0] as ImportKind) ? (pos.shift() as ImportKind) : undefined;
    if (pos.length !== 1) throw new UsageError(`expected one SOURCE${kind ? ` after ${kind}` : ''}, received ${pos.length ? pos.join(' ') : 'none'}\nusage: ${importCommand.usage}`);
    if (typeof args.out !== 'string') throw new UsageError(`--out: expected an output directory\nusage: ${importCommand.usage}`);
    const r = importModel({
      source: pos[0], out: args.out, kind, id: args.id as string | undefined, from: args.from as string | undefined,
      embedding: args.embedding as string | undefined, logits: args.logits as string | undefined, preprocessing: preprocessing(args),
    });
    if (args.json) {
      process.stdout.write(JSON.stringify({ card: r.card, cardPath: r.cardPath, onnxPath: r.onnxPath, headPath: r.headPath, preprocessingFrom: r.preprocessingFrom }, null, 2) + '\n');
      return;
    }
    const { card } = r;
    process.stdout.write([
      `imported ${card.id}${r.entry ? ` (catalogue: ${r.entry.description})` : ''}`,
      `  onnx:      ${r.onnxPath}`,
      `  card:      ${r.cardPath}`,
      `  input:     ${card.input.name} ${card.input.layout} ${card.input.size.join('x')} ${card.input.channels}, (pixel*${card.input.scale} - [${card.input.mean}]) / [${card.input.std}], resize ${card.input.resize} (${r.preprocessingFrom})`,
      `  embedding: ${card.embedding.tensor} (${card.embedding.dim}-d)`,
      ...(card.logits ? [`  logits:    ${card.logits.tensor} (${card.logits.classes} classes${card.logits.labelOffset ? `, label = logit index ${card.logits.labelOffset < 0 ? '-' : '+'} ${Math.abs(card.logits.labelOffset)}` : ''})`] : []),
      ...(r.headPath ? [`  head:      ${r.headPath} (W ${card.logits!.classes}x${card.embedding.dim}, c)`] : []),
      `  source:    ${card.source}`,
    ].join('\n') + '\n');
  },
};

function triple(flag: string, value: unknown): [number, number, number] | undefined {
  if (value === undefined) return undefined;
  const parts = String(value).split(',').map(Number);
  if (parts.length === 1 && Number.isFinite(parts[0])) return [parts[0], parts[0], parts[0]];
  if (parts.length !== 3 || !parts.every(Number.isFinite)) throw new UsageError(`--${flag}: expected one number or three comma-separated numbers R,G,B, received '${value}'`);
  return parts as [number, number, number];
}

function preprocessing(args: ParsedArgs): Partial<Preprocessing> {
  const channels = args.channels as string | undefined;
  if (channels !== undefined && channels !== 'RGB' && channels !== 'BGR') throw new UsageError(`--channels: expected RGB or BGR, received '${channels}'`);
  const resize = args.resize as string | undefined;
  if (resize !== undefined && !['crop', 'stretch', 'pad'].includes(resize)) throw new UsageError(`--resize: expected crop, stretch or pad, received '${resize}'`);
  const scale = args.scale as number | undefined;
  if (scale !== undefined && !(scale > 0)) throw new UsageError(`--scale: expected a positive number, received ${scale}`);
  const std = triple('std', args.std);
  if (std && !std.every((s) => s > 0)) throw new UsageError(`--std: expected positive numbers, received '${args.std}'`);
  return { channels: channels as Preprocessing['channels'] | undefined, resize: resize as Preprocessing['resize'] | undefined, scale, mean: triple('mean', args.mean), std };
}

function list(json: boolean): void {
  const rows = CATALOGUE.map((e) => {
    let available: string;
    try {
      available = locate(e).file;
    } catch (err) {
      available = `not found: ${(err as Error).message}`;
    }
    return { id: e.id, kind: e.kind, description: e.description, licence: e.licence, file: available };
  });
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  const width = Math.max(...rows.map((r) => r.id.length));
  process.stdout.write(rows.map((r) => `${r.id.padEnd(width)}  ${r.kind.padEnd(7)}  ${r.description}\n${' '.repeat(width + 11)}${r.file}`).join('\n') + '\n');
}
