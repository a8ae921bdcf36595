import { Engine } from '../../engine/engine';
import { loadEmbeddings, saveEmbeddings, sidecarPath } from '../../io/embeddings';
import { checkOutputs } from '../../io/outputs';
import { LinearMap } from '../../maps/linear-map';
import { UsageError, type Command } from '../command';

export const applyCommand: Command = {
  name: 'apply',
  summary: 'map embeddings through a fitted map (ids carried to the output sidecar)',
  usage: 'embmap apply --map map.safetensors --input A.npy --out A2B.npy [--normalize]',
  flags: { map: 'string', input: 'string', out: 'string', normalize: 'boolean' },
  async run(args) {
    for (const f of ['map', 'input', 'out']) {
      if (typeof args[f] !== 'string') throw new UsageError(`--${f}: expected a value\nusage: ${applyCommand.usage}`);
    }
    const out = args.out as string;
    checkOutputs([{ name: '--out', file: out, extensions: ['.npy', '.safetensors'], companions: [sidecarPath(out)] }], [{ name: '--map', file: args.map as string }, { name: '--input', file: args.input as string }]);
    const map = LinearMap.load(args.map as string);
    const set = loadEmbeddings(args.input as string);
    if (set.matrix.cols !== map.p) {
      throw new RangeError(`--input: expected ${map.p}-d embeddings for this ${map.p} -> ${map.q} map, received ${set.matrix.rows}x${set.matrix.cols} in ${args.input}`);
    }
    let mapped = await map.applyBatch(set.matrix);
    if (args.normalize) mapped = await Engine.get().normalizeRows(mapped, { inPlace: true });
    saveEmbeddings(out, { matrix: mapped, ids: set.ids, labels: set.labels });
    process.stdout.write(`wrote ${out}: ${mapped.rows} x ${mapped.cols} ${mapped.dtype}${args.normalize ? ', L2-normalised' : ''}\n`);
  },
};
