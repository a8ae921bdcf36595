import * as path from 'node:path';
import { openNpy } from '../../io/npy';
import { readSidecar, sidecarPath } from '../../io/embeddings';
import { readSafetensors } from '../../io/safetensors';
import { MAP_FORMAT } from '../../maps/linear-map';
import { type ModelDescription, describeOnnx } from '../../models/describe';
import { PRESET_NAMES } from '../../models/presets';
import { UsageError, type Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'describe a .npy embedding set, a .safetensors map/tensor file or an .onnx model (and the card embmap would use)',
  positional: 'FILE',
  notes:
    '.onnx: inputs, outputs and what each is read as, candidate embedding tensors, metadata, and the card embmap would\n' +
    'use, each field with its origin (graph, metadata, preset, flag) and missing ones marked (docs/YOUR-MODEL.md)',
  flags: {
    json: { type: 'boolean', description: 'print JSON' },
    preset: { type: 'string', value: 'NAME', choices: PRESET_NAMES, description: 'an .onnx FILE: complete its card with a preset (src/models/presets.ts)' },
    embedding: { type: 'string', value: 'TENSOR', description: 'an .onnx FILE: the embedding tensor, by name' },
  },
  run(args) {
    const file = args.positional[0];
    if (args.positional.length !== 1) throw new UsageError(`FILE: expected one .npy, .safetensors or .onnx file, received ${file === undefined ? 'none' : args.positional.join(' ')}`);
    if (path.extname(file).toLowerCase() === '.onnx') {
      const d = describeOnnx(file, { ...(args.preset !== undefined ? { preset: args.preset as string } : {}), ...(args.embedding !== undefined ? { embedding: args.embedding as string } : {}) });
      process.stdout.write(args.json ? JSON.stringify(d, null, 2) + '\n' : formatModel(d));
      return;
    }
    if (args.preset !== undefined || args.embedding !== undefined) throw new UsageError(`--${args.preset !== undefined ? 'preset' : 'embedding'}: only applies to an .onnx FILE`);
    const info = describeFile(file);
    process.stdout.write(args.json ? JSON.stringify(info, null, 2) + '\n' : Object.entries(info).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n') + '\n');
  },
};

function describeFile(file: string): Record<string, unknown> {
  const ext = path.extname(file).toLowerCase();
  const rows = readSidecar(file);
  const ids = rows ? `${sidecarPath(file)} (${rows.ids.length} ids)` : 'none (rows are numbered)';
  if (ext === '.npy') {
    const r = openNpy(file);
    try {
      const sample = r.readRows(0, Math.min(r.rows, 1000));
      let nonFinite = 0, norm = 0;
      for (let i = 0; i < sample.rows; i++) {
        let s = 0;
        for (const v of sample.row(i)) {
          if (!Number.isFinite(v)) nonFinite++;
          s += v * v;
        }
        norm += Math.sqrt(s);
      }
      return {
        file, kind: 'npy embedding set', shape: r.shape, dtype: r.dtype, ids,
        [`mean row norm (first ${sample.rows} rows)`]: sample.rows ? +(norm / sample.rows).toPrecision(5) : 0,
        'non-finite values (sampled)': nonFinite,
      };
    } finally {
      r.close();
    }
  }
  if (ext === '.safetensors') {
    const f = readSafetensors(file);
    const tensors = Object.fromEntries([...f.tensors].map(([n, t]) => [n, `${t.dtype} [${t.shape.join(', ')}]`]));
    if (f.metadata.format === MAP_FORMAT) {
      const md = f.metadata;
      return {
        file, kind: 'embmap linear map', tensors,
        source: `${md.source_model} (${md.source_dim}-d)`, target: `${md.target_model} (${md.target_dim}-d)`,
        estimator: md.estimator, params: JSON.parse(md.params ?? '{}'), pairs: Number(md.pairs),
        diagnostics: JSON.parse(md.diagnostics ?? '{}'), library: md.library, created: md.created,
      };
    }
    return { file, kind: tensors.embeddings ? 'safetensors embedding set' : 'safetensors tensors', tensors, metadata: f.metadata, ids };
  }
  throw new UsageError(`FILE: expected a .npy, .safetensors or .onnx file, received ${file}`);
}

function formatModel(d: ModelDescription): string {
  const dims = (v: (number | string | null)[] | undefined) => (v ? `[${v.map((x) => x ?? '?').join(', ')}]` : 'undeclared');
  const field = (name: string, value: unknown) => `    ${name}: ${value === undefined ? 'MISSING' : JSON.stringify(value)}${d.origins[name] ? `  (${d.origins[name]})` : ''}`;
  const input = d.card.input;
  const emb = d.card.embedding as { tensor?: string; dim?: number } | undefined;
  return [
    `file: ${d.file} (producer ${d.producer}; opsets ${d.opsets.join(', ') || 'none'})`,
    'inputs:',
    ...d.inputs.map((t) => `  ${t.name}: ${t.dtype} ${dims(t.dims)}${t.layout ? ` ${t.layout}` : ''}`),
    'outputs:',
    ...d.outputs.map((t) => `  ${t.name}: ${t.dtype} ${dims(t.dims)}: ${t.reading}`),
    'candidate embedding tensors:',
    ...(d.candidates.length ? d.candidates.map((c) => `  ${c.tensor}${c.dim !== undefined ? ` (${c.dim}-d)` : ''}: ${c.why}`) : ['  none']),
    `metadata: ${Object.keys(d.metadata).length ? '' : 'none'}`,
    ...Object.entries(d.metadata).map(([k, v]) => `  ${k}: ${v.length > 200 ? v.slice(0, 200) + '...' : v}`),
    `card (${d.missing.length ? `${d.missing.length} field(s) MISSING` : 'complete'}):`,
    `  id: ${JSON.stringify(d.card.id)}`,
    '  input:',
    ...['name', 'layout', 'size', 'channels', 'scale', 'mean', 'std', 'resize', 'crop', 'cropCentre', 'whiten']
      .filter((k) => input[k] !== undefined || d.missing.includes(`input.${k}`))
      .map((k) => field(`input.${k}`, input[k]).replace(`    input.${k}:`, `    ${k}:`)),
    `  embedding: ${emb ? `${emb.tensor}${emb.dim !== undefined ? ` (${emb.dim}-d)` : ''}  (${d.origins['embedding.tensor']})` : 'MISSING'}`,
    `  logits: ${d.card.logits ? `${JSON.stringify(d.card.logits)}  (${d.origins.logits})` : 'none'}`,
    d.next,
    '',
  ].join('\n');
}
