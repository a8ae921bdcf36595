// One rule for a command's outputs, checked before any work: each output has an expected
// extension, lies in an existing folder, is not a folder itself, and is none of the same
// command's inputs, compared by real path after symlinks (so `--out ./a.npy` and a link to it
// are caught too). Two outputs of one command may not be the same file either.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe } from '../core/validate';
import { realPathOf } from './paths';

export interface NamedPath {
  /** How the user named it, e.g. '--out'. */
  name: string;
  file: string;
}

export interface OutputPath extends NamedPath {
  /** Lower-case extensions with the dot, e.g. ['.npy', '.safetensors']. */
  extensions: readonly string[];
  /** Files written beside the output (e.g. its ids sidecar) that must not be inputs either. */
  companions?: readonly string[];
}

/** Throws a RangeError naming the output when it breaks the rule above. Inputs that are undefined are skipped. */
export function checkOutputs(outputs: readonly OutputPath[], inputs: readonly (NamedPath | undefined)[]): void {
  const taken = new Map<string, string>();
  for (const input of inputs) {
    const real = input && realPathOf(input.file);
    if (real && !taken.has(real)) taken.set(real, `the input ${input.name} ${input.file}`);
  }
  for (const out of outputs) {
    const { name, file, extensions } = out;
    if (typeof file !== 'string' || file === '') throw new RangeError(`${name}: expected a file name, received ${describe(file)}`);
    if (!extensions.includes(path.extname(file).toLowerCase())) {
      throw new RangeError(`${name}: expected a file name ending in ${extensions.join(' or ')}, received ${JSON.stringify(file)}`);
    }
    const dir = path.dirname(path.resolve(file));
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new RangeError(`${name}: expected an existing folder to write ${JSON.stringify(file)} into, ${dir} does not exist or is not a folder`);
    }
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw new RangeError(`${name}: expected a file name, received ${JSON.stringify(file)}, which is a folder`);
    }
    for (const f of [file, ...(out.companions ?? [])]) {
      const real = realPathOf(f);
      const clash = taken.get(real);
      if (clash !== undefined) {
        const what = f === file ? JSON.stringify(file) : `${JSON.stringify(file)} (its ${path.basename(f)})`;
        const why = clash.startsWith('the input') ? '; writing it would overwrite that input' : '';
        throw new RangeError(`${name}: expected a file that is not ${clash}, received ${what}${why}`);
      }
      taken.set(real, `the output ${name} ${file}`);
    }
  }
}
