import * as path from 'node:path';
import { writeFileAtomic } from '../../io/atomic';
import type { Command } from '../command';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'macro benchmarks (extraction, fit, apply, cosine) on every backend, beside NumPy and ml-matrix',
  flags: {
    quick: { type: 'boolean', description: 'small sizes only (a smoke run)' },
    backend: { type: 'string', value: 'NAME', repeatable: true, description: 'a backend to measure (default: every available one)' },
    json: { type: 'boolean', description: 'print JSON instead of Markdown' },
    out: { type: 'string', short: 'o', value: 'results.json', description: 'also write the results as JSON to this file' },
    results: { type: 'string', value: 'bench/RESULTS.md', description: "replace this command's section of a results file" },
  },
  async run(args) {
    // The benchmarks live in the repository's bench/ (compiled beside src/), which the npm
    // package does not ship.
    let macro: typeof import('../../../bench/macro');
    let report: typeof import('../../../bench/report');
    try {
      [macro, report] = await Promise.all([import('../../../bench/macro'), import('../../../bench/report')]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      throw new Error(`the benchmarks are not in this installation (${path.join(__dirname, '..', '..', '..', 'bench')} is missing): run embmap bench from a clone of the repository after npm run build`);
    }
    const result = await macro.runMacro({ quick: args.quick === true, backends: args.backend as string[] | undefined });
    const md = macro.renderMacro(result);
    const json = JSON.stringify(result, null, 2) + '\n';
    if (typeof args.out === 'string') writeFileAtomic(args.out, [Buffer.from(json)]);
    // Only this command's section of a results file is replaced (see bench/report.ts).
    if (typeof args.results === 'string') report.updateResultsFile(args.results, 'macro', md);
    process.stdout.write(args.json ? json : md);
  },
};
