// A parser for the Python literal subset found in .npy headers (the header is `repr()` of a dict,
// read by NumPy with ast.literal_eval): dicts with string keys, tuples, lists, strings,
// integers (with Python 2's `L` suffix), True, False and None. Tuples and lists both become arrays;
// `(x)` without a comma is just `x`, as in Python.

export type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

/** Parses `text` as one literal surrounded by optional whitespace; throws SyntaxError naming the offset. */
export function parsePyLiteral(text: string): PyValue {
  const p = new Parser(text);
  const value = p.value();
  p.skipSpace();
  if (p.pos < text.length) p.error('end of input');
  return value;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"' };

class Parser {
  pos = 0;

  constructor(private readonly text: string) {}

  error(expected: string): never {
    const found = this.pos < this.text.length ? JSON.stringify(this.text.slice(this.pos, this.pos + 12)) : 'end of input';
    throw new SyntaxError(`at offset ${this.pos}: expected ${expected}, found ${found}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  /** Consumes `c` (after whitespace) if present. */
  eat(c: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] !== c) return false;
    this.pos++;
    return true;
  }

  value(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '{') return this.dict();
    if (c === '(' || c === '[') return this.sequence();
    const word = /^(?:True|False|None)\b/.exec(this.text.slice(this.pos, this.pos + 6));
    if (word) {
      this.pos += word[0].length;
      return word[0] === 'None' ? null : word[0] === 'True';
    }
    const int = /^[-+]?\d+[lL]?/.exec(this.text.slice(this.pos, this.pos + 40));
    if (int) {
      this.pos += int[0].length;
      return Number(int[0].replace(/[lL]$/, ''));
    }
    if (/^[uUbB]?['"]/.test(this.text.slice(this.pos, this.pos + 2))) return this.string();
    this.error('a Python literal');
  }

  string(): string {
    if (/[uUbB]/.test(this.text[this.pos])) this.pos++;
    const quote = this.text[this.pos++];
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined || c === '\n') this.error(`closing ${quote}`);
      this.pos++;
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos];
      const width = e === 'x' ? 2 : e === 'u' ? 4 : 0;
      const digits = this.text.slice(this.pos + 1, this.pos + 1 + width);
      if (width > 0 && digits.length === width && /^[0-9a-fA-F]+$/.test(digits)) {
        out += String.fromCharCode(parseInt(digits, 16));
        this.pos += 1 + digits.length;
      } else if (e !== undefined && e in ESCAPES) {
        out += ESCAPES[e];
        this.pos++;
      } else {
        out += '\\'; // Python keeps unknown escapes verbatim
      }
    }
  }

  /** `(...)` or `[...]`; a parenthesized single item without a trailing comma is the item itself. */
  sequence(): PyValue {
    const open = this.text[this.pos++];
    const close = open === '(' ? ')' : ']';
    const items: PyValue[] = [];
    let trailingComma = false;
    while (!this.eat(close)) {
      if (items.length > 0 && !trailingComma) this.error(`',' or '${close}'`);
      items.push(this.value());
      trailingComma = this.eat(',');
    }
    return open === '(' && items.length === 1 && !trailingComma ? items[0] : items;
  }

  dict(): Map<string, PyValue> {
    this.pos++;
    const out = new Map<string, PyValue>();
    let trailingComma = false;
    while (!this.eat('}')) {
      if (out.size > 0 && !trailingComma) this.error("',' or '}'");
      this.skipSpace();
      const start = this.pos;
      const key = this.value();
      if (typeof key !== 'string') {
        this.pos = start;
        this.error('a string key');
      }
      if (!this.eat(':')) this.error("':'");
      out.set(key, this.value());
      trailingComma = this.eat(',');
    }
    return out;
  }
}
