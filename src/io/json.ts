// JSON for the files embmap writes: JSON.stringify turns Infinity and NaN into null, which would
// lose what they mean (ridge's lambda = Infinity: the prior kept).

/** A JSON.stringify replacer keeping non-finite numbers as the strings 'Infinity', '-Infinity', 'NaN'. */
export function keepNonFinite(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}
