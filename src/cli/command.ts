// The CLI's command contract and its flag parser: flags are declared per command, unknown or
// malformed flags are errors that name the flag and what was expected.
export type FlagType = 'boolean' | 'string' | 'number' | 'strings';
export type FlagValue = boolean | string | number | string[];

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagType>;
  run(args: ParsedArgs): void | Promise<void>;
}

export interface ParsedArgs {
  positional: string[];
  [flag: string]: FlagValue | undefined;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[], flags: Record<string, FlagType>, usage: string): ParsedArgs {
  const out: ParsedArgs = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    const [rawName, inline] = a.slice(2).split(/=(.*)/s, 2);
    const type = flags[rawName];
    if (!type) throw new UsageError(`unknown option --${rawName}\nusage: ${usage}`);
    // Only 'strings' flags repeat; a second value of any other would silently replace the first.
    if (type !== 'strings' && rawName in out) throw new UsageError(`--${rawName}: given more than once; expected a single value`);
    if (type === 'boolean') {
      out[rawName] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${rawName}: expected a value\nusage: ${usage}`);
    if (type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${rawName}: expected a number, received '${value}'`);
      out[rawName] = n;
    } else if (type === 'strings') {
      out[rawName] = [...((out[rawName] as string[] | undefined) ?? []), value];
    } else {
      out[rawName] = value;
    }
  }
  return out;
}
