import * as path from 'node:path';
import { openNpy } from '../../io/npy';
import { readSidecar, readableSidecarPath } from '../../io/embeddings';
import { resolveInside } from '../../io/paths';
import { loadCard } from '../../models/load';
import { readSafetensors } from '../../io/safetensors';
import { MAP_FORMAT } from '../../maps/linear-map';
import { UsageError, type Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'describe a .npy embedding set, a .safetensors map/tensor file or a model card',
  usage: 'embmap inspect FILE [--json]',
  flags: { json: 'boolean' },
  run(args) {
    const file = args.positional[0];
    if (!file) throw new UsageError(`expected a FILE\nusage: ${inspectCommand.usage}`);
    const info = describeFile(file);
    process.stdout.write(args.json ? JSON.stringify(info, null, 2) + '\n' : Object.entries(info).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n') + '\n');
  },
};

function describeFile(file: string): Record<string, unknown> {
  const ext = path.extname(file).toLowerCase();
  const rows = readSidecar(file);
  const ids = rows ? `${readableSidecarPath(file)} (${rows.ids.length} ids)` : 'none (rows are numbered)';
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
  if (ext === '.json') {
    // A card is the user's own configuration and may name a model anywhere: say where it leads.
    const { card, onnxPath } = loadCard(file);
    const inside = resolveInside(path.dirname(file), card.onnx) !== undefined;
    return { file, kind: 'model card', id: card.id, onnx: `${onnxPath}${inside ? '' : " (outside the card's folder)"}`, input: card.input, embedding: card.embedding, ...(card.logits ? { logits: card.logits } : {}) };
  }
  throw new UsageError(`FILE: expected a .npy or .safetensors file or a model card (.json), received ${file}`);
}
