import { CATALOGUE, IMPORT_KINDS, type ImportKind, importModel, locate } from '../../importers';
import type { Preprocessing } from '../../importers/catalogue';
import { UsageError, type Command, type ParsedArgs } from '../command';

export const importCommand: Command = {
  name: 'import',
  summary: 'convert a pretrained TF.js, TFLite or face-api model to ONNX with its model card',
  positional: '[tfjs|tflite|faceapi] SOURCE',
  notes:
    'SOURCE: a catalogue id (see embmap import --list) or a model file: model.json (tfjs), .tflite, or\n' +
    'face_recognition_model-weights_manifest.json (faceapi). The preprocessing flags override what the\n' +
    'catalogue or the model says.\n' +
    'embmap import --list [--json]: the catalogue and where each model was found',
  flags: {
    out: { type: 'string', short: 'o', value: 'DIR', description: 'an output directory' },
    id: { type: 'string', value: 'ID', description: "the model's id (default: the catalogue id or the file's name)" },
    from: { type: 'string', value: 'PATH', description: "a catalogue model's file or its folder" },
    embedding: { type: 'string', value: 'NODE', description: 'the graph node whose output is the embedding' },
    logits: { type: 'string', value: 'NODE', description: 'the graph node whose output is the logits' },
    channels: { type: 'string', choices: ['RGB', 'BGR'], description: 'the channel order the network expects' },
    scale: { type: 'number', value: 'S', description: 'pixel values (0..255) are multiplied by S' },
    mean: { type: 'string', value: 'R,G,B', description: 'subtracted after scaling (one number or three)' },
    std: { type: 'string', value: 'R,G,B', description: 'divided by after subtracting the mean (one positive number or three)' },
    resize: { type: 'string', choices: ['crop', 'stretch', 'pad'], description: "how images are brought to the network's input size" },
    list: { type: 'boolean', description: 'list the catalogue instead of importing' },
    json: { type: 'boolean', description: 'print JSON' },
  },
  run(args) {
    if (args.list) return list(Boolean(args.json));
    const pos = args.positional;
    const kind = IMPORT_KINDS.includes(pos[0] as ImportKind) ? (pos.shift() as ImportKind) : undefined;
    if (pos.length !== 1) throw new UsageError(`expected one SOURCE${kind ? ` after ${kind}` : ''}, received ${pos.length ? pos.join(' ') : 'none'}`);
    // Not `required` in the spec: --list needs no --out.
    if (typeof args.out !== 'string') throw new UsageError('--out: expected an output directory, received nothing');
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
  const channels = args.channels as Preprocessing['channels'] | undefined;
  const resize = args.resize as Preprocessing['resize'] | undefined;
  const scale = args.scale as number | undefined;
  if (scale !== undefined && !(scale > 0)) throw new UsageError(`--scale: expected a positive number, received ${scale}`);
  const std = triple('std', args.std);
  if (std && !std.every((s) => s > 0)) throw new UsageError(`--std: expected positive numbers, received '${args.std}'`);
  return { channels, resize, scale, mean: triple('mean', args.mean), std };
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
