// The CLI's command contract: each command declares its flags once (type, description, default,
// required, repeatable, short alias, choices), and that one spec gives both the parser (Node's
// util.parseArgs tokenizer) and the usage text. Errors name the flag, what was expected and what
// was received. A flag may also be a bare FlagType and `usage` a hand-written string: the older
// shape, still accepted.
import { parseArgs as tokenize } from 'node:util';

/** 'strings': a repeatable string (the older shape's spelling of `{ type: 'string', repeatable: true }`). */
export type FlagType = 'boolean' | 'string' | 'number' | 'strings';
export type FlagValue = boolean | string | number | string[] | number[];

export interface FlagSpec {
  type: 'boolean' | 'string' | 'number';
  /** What the value is, as a noun phrase ("an output directory"): also the error for a missing required flag. */
  description: string;
  /** The value's name in the usage text (FILE, N, DIR). */
  value?: string;
  default?: string | number | boolean;
  required?: boolean;
  /** Given several times, the values are collected into an array in order. */
  repeatable?: boolean;
  /** One-letter alias: 'o' makes -o mean --out. */
  short?: string;
  /** The only values accepted. */
  choices?: readonly string[];
}

export type Flag = FlagType | FlagSpec;

export interface Command {
  name: string;
  summary: string;
  /** Positional arguments as the usage line shows them ('FILE', 'classification|faces'). */
  positional?: string;
  /** Lines shown after the options: further forms, notes. */
  notes?: string;
  /** The older shape's hand-written usage text; generated from the flags when absent. */
  usage?: string;
  flags: Record<string, Flag>;
  run(args: ParsedArgs): void | Promise<void>;
}

/** Flag values keyed by the long name (with the declared defaults), and the positional arguments. */
export interface ParsedArgs {
  positional: string[];
  [flag: string]: FlagValue | undefined;
}

export class UsageError extends Error {}

const HELP: FlagSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** A flag in the rich shape, whichever shape it was declared in. */
export function flagSpec(flag: Flag): FlagSpec {
  if (typeof flag !== 'string') return flag;
  return flag === 'strings' ? { type: 'string', repeatable: true, description: '' } : { type: flag, description: '' };
}

function specs(flags: Record<string, Flag>): Map<string, FlagSpec> {
  const out = new Map<string, FlagSpec>(Object.entries(flags).map(([name, f]) => [name, flagSpec(f)]));
  if (!out.has('help')) out.set('help', HELP);
  return out;
}

// A value that begins with '-' is another option unless it is a negative number or '-' itself
// (a placeholder some flags accept): `--out --json` must not write a file named "--json".
const looksLikeOption = (v: string) => v.startsWith('-') && v !== '-' && !/^-[\d.]/.test(v);

/**
 * Parses argv against a command's flags. `--` ends the options; -h/--help sets `help` (and skips
 * the required-flag checks so that help is always reachable).
 */
export function parseArgs(argv: string[], flags: Record<string, Flag>, usage?: string): ParsedArgs {
  const all = specs(flags);
  const options = Object.fromEntries([...all].map(([name, s]) => [name, { type: s.type === 'boolean' ? 'boolean' : 'string', ...(s.short ? { short: s.short } : {}) } as const]));
  const { tokens } = tokenize({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const hint = usage ? `\nusage: ${usage}` : '';
  const out: ParsedArgs = { positional: [] };
  const seen = new Map<string, string>();
  for (const t of tokens) {
    if (t.kind === 'positional') out.positional.push(t.value);
    if (t.kind !== 'option') continue;
    const spec = all.get(t.name);
    if (!spec) throw new UsageError(`unknown option ${t.rawName}${hint}`);
    const flag = `--${t.name}`;
    if (seen.has(t.name) && !spec.repeatable) throw new UsageError(`${flag}: expected once, received it twice (${seen.get(t.name)} and ${t.rawName})`);
    seen.set(t.name, t.rawName);
    if (spec.type === 'boolean') {
      if (t.value !== undefined && t.value !== 'true' && t.value !== 'false') throw new UsageError(`${flag}: expected no value, true or false, received '${t.value}'`);
      out[t.name] = t.value !== 'false';
      continue;
    }
    if (t.value === undefined || t.value === '' || (!t.inlineValue && looksLikeOption(t.value))) {
      const received = t.value === undefined ? 'nothing' : t.value === '' ? "''" : `option ${t.value} (write ${flag}=${t.value} if that is the value)`;
      throw new UsageError(`${flag}: expected a value${spec.value ? ` (${spec.value})` : ''}, received ${received}${hint}`);
    }
    const value = convert(flag, spec, t.value);
    out[t.name] = spec.repeatable ? [...((out[t.name] as (string | number)[] | undefined) ?? []), value] as FlagValue : value;
  }
  if (out.help) return out;
  for (const [name, s] of all) {
    if (out[name] !== undefined) continue;
    if (s.required) throw new UsageError(`--${name}: expected ${s.description || 'a value'}${s.repeatable ? ' at least once' : ''}, received nothing${hint}`);
    if (s.default !== undefined) out[name] = s.default;
  }
  return out;
}

function convert(flag: string, spec: FlagSpec, value: string): string | number {
  if (spec.choices && !spec.choices.includes(value)) throw new UsageError(`${flag}: expected one of ${spec.choices.join(', ')}, received '${value}'`);
  if (spec.type !== 'number') return value;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, received '${value}'`);
  return n;
}

const placeholder = (s: FlagSpec) => s.value ?? s.choices?.join('|') ?? (s.type === 'number' ? 'N' : 'VALUE');

/** The usage line: the command, its positional arguments, its required flags, then [options]. */
export function synopsis(cmd: Command): string {
  if (cmd.usage) return cmd.usage;
  const required = [...specs(cmd.flags)].filter(([, s]) => s.required).map(([name, s]) => `--${name} ${placeholder(s)}${s.repeatable ? ' ...' : ''}`);
  return ['embmap', cmd.name, ...(cmd.positional ? [cmd.positional] : []), ...required, '[options]'].join(' ');
}

/** The whole help text of a command: usage line, summary, every option, notes. */
export function helpText(cmd: Command): string {
  const rows = [...specs(cmd.flags)].map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'boolean' ? '' : ` ${placeholder(s)}`}`;
    const facts = [
      s.required ? 'required' : '',
      s.repeatable ? 'repeatable' : '',
      s.default !== undefined ? `default ${s.default}` : '',
    ].filter(Boolean);
    const text = [s.description || s.type, facts.length ? `(${facts.join('; ')})` : ''].filter(Boolean).join(' ');
    return [left, text] as const;
  });
  const width = Math.min(30, Math.max(...rows.map(([l]) => l.length)));
  const lines = rows.map(([l, r]) => (l.length > width ? `  ${l}\n  ${' '.repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`));
  return [`usage: ${synopsis(cmd)}`, '', cmd.summary, '', 'options:', ...lines, ...(cmd.notes ? ['', cmd.notes] : [])].join('\n');
}
