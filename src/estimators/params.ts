// Every estimator parameter declared once (after scikit-learn's `_parameter_constraints`):
// name, type, range, default and the methods that take it. `checkParams` validates a call
// against it, and the CLI's `fit` flags and usage text are generated from it, so a parameter
// a method does not take is an error naming the method and what it does take.
import { describe, fail, isMatrix } from '../core/validate';
import { LinearMap } from '../maps/linear-map';
import { STATS_PRECISIONS } from '../engine/stats';
import type { EstimatorName } from './estimator';
import { LAMBDA_RULES } from './ridge';

export const ESTIMATORS: readonly EstimatorName[] = ['lstsq', 'ridge', 'procrustes', 'lowrank', 'weights'];
const PAIRED: readonly EstimatorName[] = ['lstsq', 'ridge', 'procrustes', 'lowrank'];

export type ParamType =
  | { kind: 'boolean' }
  | { kind: 'number'; min: number; max?: number; integer?: boolean }
  | { kind: 'choice'; values: readonly string[] }
  /** A number >= min or one of the words; `infinite`: Infinity too (the estimator says when it means something). */
  | { kind: 'number|choice'; min: number; values: readonly string[]; infinite?: true }
  | { kind: 'numbers'; min: number }
  /** A map: a LinearMap or { weight } (library), a map file (.safetensors), or one of the words. */
  | { kind: 'map'; values: readonly string[] }
  /** A classifier head: { W, c } (library) or a head file (.safetensors). */
  | { kind: 'head' };

export interface ParamSpec {
  name: string;
  type: ParamType;
  /** undefined: required when the method takes it, unless `defaultText` explains the default. */
  default?: unknown;
  /** How the default is chosen when it depends on the data. */
  defaultText?: string;
  methods: readonly EstimatorName[];
  doc: string;
  /** Library only: no CLI flag (lists of numbers). */
  libraryOnly?: boolean;
}

/** A parameter may be declared more than once with different types for different methods (lambda). */
export const PARAMETERS: readonly ParamSpec[] = [
  { name: 'intercept', type: { kind: 'boolean' }, default: true, methods: PAIRED, doc: 'fit a bias by centring both sides' },
  {
    name: 'precision', type: { kind: 'choice', values: STATS_PRECISIONS }, default: 'float64', methods: PAIRED,
    doc: "products in float64 (accurate) or float32 (1.6x faster measured, relative error ~cond(X)^2*1e-7)",
  },
  {
    name: 'rcond', type: { kind: 'number', min: 0, max: 1 }, defaultText: 'p * epsilon of the products', methods: ['lstsq'],
    doc: 'eigenvalues of X^T X below rcond * the largest count as zero (minimum-norm solution)',
  },
  {
    name: 'lambda', type: { kind: 'number|choice', min: 0, values: [...LAMBDA_RULES, 'task'], infinite: true }, methods: ['ridge'],
    defaultText: "cv-top1 when the target head is given (as --prior weights needs), else gcv",
    doc: "penalty >= 0, or chosen over the grid: gcv or k-fold cv on the mapped embeddings; k-fold on the target head's logits, by their error (cv-logits) or top-1 agreement with the target's own (cv-top1, the task's metric); toward a prior the grid ends at Infinity, the prior kept (also a value: the prior map itself); 'task' (experiment faces): verification on held-out identities of the fitting set (src/estimators/ridge-task.ts)",
  },
  { name: 'lambda', type: { kind: 'number', min: 0 }, default: 0, methods: ['lowrank'], doc: 'ridge penalty before the rank cut' },
  {
    name: 'grid', type: { kind: 'numbers', min: Number.MIN_VALUE }, defaultText: '25 values, 1e-6..1e2 (1e6 with a prior) x the mean eigenvalue of X^T X',
    methods: ['ridge'], doc: 'candidate lambdas', libraryOnly: true,
  },
  {
    name: 'folds', type: { kind: 'number', min: 2, max: 1000, integer: true }, defaultText: "5; fitMap deals its protocol's folds",
    methods: ['ridge'], doc: "folds of lambda 'cv' when an estimator is fitted on rows (fit(X, Y))", libraryOnly: true,
  },
  {
    name: 'seed', type: { kind: 'number', min: 0, integer: true }, defaultText: "0; fitMap uses its protocol's seed",
    methods: ['ridge'], doc: "seed of lambda 'cv''s fold assignment when an estimator is fitted on rows", libraryOnly: true,
  },
  {
    name: 'prior', type: { kind: 'map', values: ['weights'] }, defaultText: 'none: shrink toward zero', methods: ['ridge'],
    doc: "shrink toward this map, weight and bias: a map file, or 'weights' (the closed form from the two classifier heads); lambda = Infinity is the prior map itself",
  },
  { name: 'sourceHead', type: { kind: 'head' }, defaultText: 'none', methods: ['ridge'], doc: "the source network's classifier head (for --prior weights)" },
  { name: 'targetHead', type: { kind: 'head' }, defaultText: 'none', methods: ['ridge'], doc: "the target network's classifier head (for --prior weights and the lambda rules cv-logits, cv-top1)" },
  { name: 'rank', type: { kind: 'number', min: 1, integer: true }, methods: ['lowrank'], doc: 'rank of the map' },
  { name: 'scale', type: { kind: 'boolean' }, default: false, methods: ['procrustes'], doc: 'also fit an isotropic scale' },
  { name: 'centre', type: { kind: 'boolean' }, default: true, methods: ['weights'], doc: 'centre the heads over classes' },
];

/** Library values of 'map' and 'head' parameters (LinearMap, Head) pass through as they are. */
export type ParamValue = boolean | number | string | number[] | object;

const isSafetensors = (v: string) => v.toLowerCase().endsWith('.safetensors');

/** The parameters `method` takes, each once. */
export function paramsOf(method: EstimatorName): ParamSpec[] {
  return PARAMETERS.filter((s) => s.methods.includes(method));
}

/**
 * Checks `params` for `method` against the declaration and fills in defaults. Unknown or
 * irrelevant names are errors listing what the method takes; `prefix` names them as the caller
 * spells them ('--' on the command line).
 */
export function checkParams(method: unknown, params: Record<string, unknown>, prefix = ''): Record<string, ParamValue> {
  if (typeof method !== 'string' || !(ESTIMATORS as readonly string[]).includes(method)) {
    fail(TypeError, `${prefix}method`, `one of ${ESTIMATORS.join(', ')}`, method);
  }
  const m = method as EstimatorName;
  const specs = paramsOf(m);
  const shown = (spec: ParamSpec) => (prefix ? prefix + cliFlag(spec) : spec.name);
  const takes = specs.filter((s) => !(prefix && s.libraryOnly)).map(shown).join(', ') || 'no parameters';
  for (const name of Object.keys(params)) {
    if (params[name] !== undefined && !specs.some((s) => s.name === name)) {
      const known = PARAMETERS.some((s) => s.name === name);
      throw new RangeError(
        `${prefix ? prefix + flagName(name) : name}: ${known ? 'not a parameter of' : 'unknown parameter for'} method '${m}', which takes ${takes}`,
      );
    }
  }
  const out: Record<string, ParamValue> = {};
  for (const s of specs) {
    const v = params[s.name];
    if (v === undefined) {
      if (s.default !== undefined) out[s.name] = s.default as ParamValue;
      else if (s.defaultText === undefined) throw new TypeError(`${shown(s)}: required by method '${m}' (${s.doc}), received undefined`);
      continue;
    }
    out[s.name] = checkValue(prefix ? prefix + flagName(s.name) : s.name, s.type, v);
  }
  return out;
}

function checkValue(name: string, t: ParamType, v: unknown): ParamValue {
  const range = (min: number, max = Infinity, integer = false) =>
    `${integer ? 'an integer' : 'a number'} ${max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`}`;
  const inRange = (x: unknown, min: number, max = Infinity, integer = false) =>
    typeof x === 'number' && Number.isFinite(x) && x >= min && x <= max && (!integer || Number.isInteger(x));
  switch (t.kind) {
    case 'boolean':
      if (typeof v !== 'boolean') fail(TypeError, name, 'a boolean', v);
      return v;
    case 'number':
      if (!inRange(v, t.min, t.max, t.integer)) fail(RangeError, name, range(t.min, t.max, t.integer), v);
      return v as number;
    case 'choice':
      if (typeof v !== 'string' || !t.values.includes(v)) fail(TypeError, name, `one of ${t.values.join(', ')}`, v);
      return v;
    case 'number|choice':
      if (typeof v === 'string' && t.values.includes(v)) return v;
      if (v === Infinity && t.infinite) return v;
      if (!inRange(v, t.min)) fail(RangeError, name, `${range(t.min)} or one of ${t.values.join(', ')}`, v);
      return v as number;
    case 'numbers':
      if (!Array.isArray(v) || v.length < 1 || !v.every((x) => inRange(x, t.min))) {
        throw new RangeError(`${name}: expected a non-empty array of numbers >= ${t.min}, received ${describe(v)}`);
      }
      return v as number[];
    case 'map':
      if (typeof v === 'string' && (t.values.includes(v) || isSafetensors(v))) return v;
      if (v instanceof LinearMap || (v !== null && typeof v === 'object' && isMatrix((v as { weight?: unknown }).weight))) return v as object;
      return fail(TypeError, name, `a LinearMap, { weight: Matrix, bias? }, a map file (.safetensors) or one of ${t.values.join(', ')}`, v);
    case 'head':
      if (typeof v === 'string' && isSafetensors(v)) return v;
      if (v !== null && typeof v === 'object' && isMatrix((v as { W?: unknown }).W)) return v as object;
      return fail(TypeError, name, 'a classifier head: { W: Matrix, c } or a head file (.safetensors)', v);
  }
}

/** camelCase to the CLI's kebab-case. */
export function flagName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** The CLI flag of a parameter: a boolean that defaults to true is turned off by --no-NAME. */
export function cliFlag(s: ParamSpec): string {
  return s.type.kind === 'boolean' && s.default === true ? `no-${flagName(s.name)}` : flagName(s.name);
}

/** How a parameter reads in usage text: its value's name (`K`) and what it is (`(lowrank; required) rank of the map`). */
export function paramUsage(s: ParamSpec): { value?: string; about: string } {
  const t = s.type;
  const value =
    t.kind === 'boolean' ? undefined :
    t.kind === 'choice' ? t.values.join('|') :
    t.kind === 'number|choice' ? `X|${t.values.join('|')}` :
    t.kind === 'numbers' ? 'X,Y,...' :
    t.kind === 'map' ? `FILE|${t.values.join('|')}` :
    t.kind === 'head' ? 'FILE' : t.integer ? 'K' : 'X';
  if (cliFlag(s) !== flagName(s.name)) return { value, about: `(${s.methods.join('|')}) do not: ${s.doc}` };
  const dflt = s.default !== undefined ? `default ${String(s.default)}` : s.defaultText ? `default ${s.defaultText}` : 'required';
  return { value, about: `(${s.methods.join('|')}; ${dflt}) ${s.doc}` };
}
