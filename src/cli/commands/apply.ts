import { Engine } from '../../engine/engine';
import { loadEmbeddings, saveEmbeddings } from '../../io/embeddings';
import { LinearMap } from '../../maps/linear-map';
import type { Command } from '../command';

export const applyCommand: Command = {
  name: 'apply',
  summary: 'map embeddings through a fitted map (ids carried to the output sidecar)',
  flags: {
    map: { type: 'string', value: 'MAP.safetensors', required: true, description: 'a map written by embmap fit' },
    input: { type: 'string', value: 'A.npy', required: true, description: "embeddings in the map's source space (.npy or .safetensors)" },
    out: { type: 'string', short: 'o', value: 'A2B.npy', required: true, description: 'the output file for the mapped embeddings (.npy or .safetensors)' },
    normalize: { type: 'boolean', description: 'L2-normalise the mapped rows' },
    json: { type: 'boolean', description: 'print JSON: the output file, its shape and dtype' },
  },
  async run(args) {
    const map = LinearMap.load(args.map as string);
    const set = loadEmbeddings(args.input as string);
    if (set.matrix.cols !== map.p) {
      throw new RangeError(`--input: expected ${map.p}-d embeddings for this ${map.p} -> ${map.q} map, received ${set.matrix.rows}x${set.matrix.cols} in ${args.input}`);
    }
    let mapped = await map.applyBatch(set.matrix);
    if (args.normalize) mapped = await Engine.get().normalizeRows(mapped, { inPlace: true });
    saveEmbeddings(args.out as string, { matrix: mapped, ids: set.ids, labels: set.labels });
    const result = { out: args.out as string, rows: mapped.rows, cols: mapped.cols, dtype: mapped.dtype, normalized: args.normalize === true };
    process.stdout.write(args.json ? JSON.stringify(result, null, 2) + '\n' : `wrote ${result.out}: ${result.rows} x ${result.cols} ${result.dtype}${result.normalized ? ', L2-normalised' : ''}\n`);
  },
};
