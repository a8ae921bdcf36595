// Image datasets as ordered lists of {id, path, label}: a folder of class folders, a TSV/CSV
// manifest, LFW's layout with its pairs.txt, or an ImageNet-labelled folder (labels.tsv). The order is deterministic (code-point sort of
// the ids for folders; file order for manifests) and the ids are what the embedding sidecars record.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertOneOf, describe, fail } from '../core/validate';
import { FileFormatError } from '../io/binary';

export interface ImageItem {
  /** Unique, stable name of the image: its path relative to the dataset root, with '/' separators. */
  id: string;
  /** Absolute path. */
  path: string;
  /** Class or identity, when the dataset has them. */
  label?: string;
}

export interface LfwPair {
  /** 1-based fold of pairs.txt. */
  fold: number;
  a: string;
  b: string;
  /** Same person. */
  same: boolean;
}

export interface Dataset {
  kind: 'folder' | 'manifest' | 'lfw';
  /** The folder or manifest it was read from. */
  source: string;
  items: ImageItem[];
  /** True when every item has a label. */
  labelled: boolean;
  /** LFW only: the verification pairs, by item id. */
  pairs?: LfwPair[];
}

/** File extensions read as images (case-insensitive); other files in a folder are ignored. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.pgm', '.ppm', '.pnm', '.bmp'];

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const isImage = (name: string) => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());

/**
 * A folder of class folders (dir/<label>/.../<image>: the label is the first folder) or a flat
 * folder of images (no labels). Images directly in dir next to class folders are an error.
 */
export function folderDataset(dir: string): Dataset {
  assertDirectory('dir', dir);
  const root = path.resolve(dir);
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (isImage(entry.name) && (entry.isFile() || entry.isSymbolicLink())) files.push(child);
    }
  };
  walk('');
  files.sort(byCodePoint);
  if (files.length === 0) throw new RangeError(`${dir}: expected images (${IMAGE_EXTENSIONS.join(' ')}) in the folder or its class folders, found none`);
  const nested = files.filter((f) => f.includes('/'));
  const loose = files.filter((f) => !f.includes('/'));
  if (nested.length > 0 && loose.length > 0) {
    throw new RangeError(`${dir}: expected either class folders or a flat folder of images, found both (e.g. '${loose[0]}' beside '${nested[0]}')`);
  }
  const items = files.map((id) => ({ id, path: path.join(root, id), ...(nested.length ? { label: id.slice(0, id.indexOf('/')) } : {}) }));
  return checked({ kind: 'folder', source: dir, items, labelled: nested.length > 0 });
}

/**
 * A manifest: one image per line, `path[<sep>label]`, tab-separated (.tsv, .txt) or comma-separated
 * (.csv, with "double-quoted" fields). An optional header names the columns (path|file|filename|image,
 * and label|identity|class|name|wnid). Paths are relative to `root`: by default the manifest's folder,
 * or its images/ subfolder when the first path is found there. Ids are the paths as written.
 */
export function manifestDataset(file: string, options: { root?: string } = {}): Dataset {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read the manifest: ${(err as Error).message}`);
  }
  const csv = path.extname(file).toLowerCase() === '.csv';
  const rows = text.split(/\r?\n/).map((line, n) => ({ line: n + 1, fields: csv ? splitCsv(line, file, n + 1) : line.split('\t') })).filter((r) => r.fields.some((f) => f.trim() !== ''));
  if (rows.length === 0) throw new FileFormatError(file, 'expected one image path per line, found no lines');
  let pathCol = 0;
  let labelCol: number | undefined = rows[0].fields.length > 1 ? 1 : undefined;
  const head = rows[0].fields.map((f) => f.trim().toLowerCase());
  if (['path', 'file', 'filename', 'image'].includes(head[0]) || head.includes('path')) {
    pathCol = Math.max(0, head.findIndex((h) => ['path', 'file', 'filename', 'image'].includes(h)));
    const l = head.findIndex((h) => ['label', 'identity', 'class', 'name', 'wnid'].includes(h));
    labelCol = l >= 0 ? l : undefined;
    rows.shift();
  }
  const dir = path.dirname(path.resolve(file));
  let root = options.root !== undefined ? path.resolve(options.root) : dir;
  if (options.root !== undefined) assertDirectory('root', options.root);
  else if (rows.length && !fs.existsSync(path.join(dir, rows[0].fields[pathCol] ?? '')) && fs.existsSync(path.join(dir, 'images', rows[0].fields[pathCol] ?? ''))) {
    root = path.join(dir, 'images');
  }
  const seen = new Map<string, number>();
  const items = rows.map(({ line, fields }) => {
    const rel = (fields[pathCol] ?? '').trim().replace(/\\/g, '/');
    if (rel === '') throw new FileFormatError(file, `line ${line}: expected an image path in column ${pathCol + 1}, found an empty field`);
    const first = seen.get(rel);
    if (first !== undefined) throw new FileFormatError(file, `line ${line}: expected each image once, '${rel}' is also on line ${first}`);
    seen.set(rel, line);
    const item: ImageItem = { id: rel, path: path.resolve(root, rel) };
    if (labelCol !== undefined) {
      const label = (fields[labelCol] ?? '').trim();
      if (label === '') throw new FileFormatError(file, `line ${line}: expected a label in column ${labelCol + 1} (every line has one when the first does), found none`);
      item.label = label;
    }
    return item;
  });
  if (items.length === 0) throw new FileFormatError(file, 'expected at least one image after the header, found none');
  return checked({ kind: 'manifest', source: file, items, labelled: labelCol !== undefined });
}

/**
 * LFW: a folder with pairs.txt and the images in images/ or lfw/ (or beside pairs.txt), as
 * <Name>/<Name>_NNNN.jpg. Ids are "<Name>/<Name>_NNNN.jpg", labels the names. subset 'pairs' keeps
 * only the images pairs.txt uses.
 */
export function lfwDataset(dir: string, options: { subset?: 'all' | 'pairs' } = {}): Dataset {
  assertDirectory('dir', dir);
  const subset = options.subset ?? 'all';
  assertOneOf('options.subset', subset, ['all', 'pairs'] as const);
  const pairsFile = path.join(dir, 'pairs.txt');
  if (!fs.existsSync(pairsFile)) throw new RangeError(`${dir}: expected LFW's pairs.txt in the folder, found none`);
  const imageRoot = ['images', 'lfw'].map((d) => path.join(dir, d)).find((d) => fs.existsSync(d) && fs.statSync(d).isDirectory()) ?? dir;
  const pairs = readLfwPairs(pairsFile);
  const folder = folderDataset(imageRoot);
  let items = folder.items;
  const ids = new Set(items.map((i) => i.id));
  const missing = pairs.flatMap((p) => [p.a, p.b]).find((id) => !ids.has(id));
  if (missing) throw new FileFormatError(pairsFile, `expected every paired image under ${imageRoot}, '${missing}' is not there`);
  if (subset === 'pairs') {
    const used = new Set(pairs.flatMap((p) => [p.a, p.b]));
    items = items.filter((i) => used.has(i.id));
  }
  return { kind: 'lfw', source: dir, items, labelled: true, pairs };
}

/** The id of LFW image n (1-based) of `name`: "<name>/<name>_<nnnn>.jpg". */
export function lfwImageId(name: string, n: number): string {
  return `${name}/${name}_${String(n).padStart(4, '0')}.jpg`;
}

/**
 * pairs.txt (View 2): a header "<folds>\t<pairs per class>", then per fold that many matched lines
 * "name i j" and mismatched lines "name1 i name2 j" (View 1's single-number header also reads).
 */
export function readLfwPairs(file: string): LfwPair[] {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.trim().split(/\s+/).map(Number) ?? [];
  if (header.length < 1 || header.length > 2 || header.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new FileFormatError(file, `line 1: expected "<folds> <pairs>" (or "<pairs>"), found ${describe(lines[0])}`);
  }
  const [folds, perClass] = header.length === 2 ? header : [1, header[0]];
  const expected = folds * perClass * 2;
  if (lines.length - 1 !== expected) {
    throw new FileFormatError(file, `expected ${expected} pair lines (${folds} folds x ${perClass} matched + ${perClass} mismatched), found ${lines.length - 1}`);
  }
  const int = (s: string, line: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new FileFormatError(file, `line ${line}: expected an image number >= 1, found ${describe(s)}`);
    return n;
  };
  return lines.slice(1).map((text, k) => {
    const line = k + 2;
    const f = text.trim().split(/\s+/);
    const fold = Math.floor(k / (2 * perClass)) + 1;
    const same = k % (2 * perClass) < perClass;
    if (same && f.length === 3) return { fold, same, a: lfwImageId(f[0], int(f[1], line)), b: lfwImageId(f[0], int(f[2], line)) };
    if (!same && f.length === 4) return { fold, same, a: lfwImageId(f[0], int(f[1], line)), b: lfwImageId(f[2], int(f[3], line)) };
    throw new FileFormatError(file, `line ${line}: expected a ${same ? 'matched pair "name i j"' : 'mismatched pair "name1 i name2 j"'} (fold ${fold}), found ${f.length} fields`);
  });
}

/**
 * An ImageNet-labelled set: `dir/labels.tsv` is either `file<TAB>wnid<TAB>index` (the ImageNet
 * sample) or `file<TAB>wnid` (Tiny-ImageNet val, mapped to indices with imagenet-classes.tsv found
 * beside dir or given).
 */
export function imagenetDataset(dir: string, classesTsv?: string): Dataset {
  const labels = path.join(dir, 'labels.tsv');
  if (!fs.existsSync(labels)) return manifestDataset(dir);
  const classesFile = classesTsv ?? [path.join(dir, '..', 'imagenet-classes.tsv'), path.join(dir, 'imagenet-classes.tsv')].find((f) => fs.existsSync(f));
  const index = new Map<string, string>();
  if (classesFile) {
    for (const line of fs.readFileSync(classesFile, 'utf8').split('\n')) {
      const [i, wnid] = line.split('\t');
      if (wnid) index.set(wnid, i);
    }
  }
  const imageDir = fs.existsSync(path.join(dir, 'images')) ? path.join(dir, 'images') : dir;
  const items = fs.readFileSync(labels, 'utf8').split('\n').filter((l) => l.trim()).map((line, k) => {
    const [file, wnid, idx] = line.split('\t');
    const label = idx ?? index.get(wnid);
    if (label === undefined) throw new FileFormatError(labels, `line ${k + 1}: no class index for '${wnid}' (expected a third column or imagenet-classes.tsv beside the folder)`);
    return { id: file, path: path.join(imageDir, file), label: label.trim() };
  });
  return { kind: 'manifest', source: labels, items, labelled: true };
}

/**
 * Opens `source` as a dataset: a .tsv/.csv/.txt file is a manifest; a folder with pairs.txt is LFW;
 * any other folder is a folder dataset.
 */
export function openDataset(source: string, options: { root?: string; subset?: 'all' | 'pairs' } = {}): Dataset {
  if (typeof source !== 'string' || source === '') fail(TypeError, 'source', 'a folder or manifest path', source);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw new RangeError(`images: expected a folder of images or a manifest (.tsv/.csv), '${source}' does not exist`);
  }
  if (options.subset === 'pairs' && !(stat.isDirectory() && fs.existsSync(path.join(source, 'pairs.txt')))) {
    throw new RangeError(`subset 'pairs': expected an LFW folder with pairs.txt, received '${source}'`);
  }
  if (!stat.isDirectory()) return manifestDataset(source, options);
  if (fs.existsSync(path.join(source, 'pairs.txt'))) return lfwDataset(source, options);
  return folderDataset(source);
}

/** Ids and labels end up as lines of a tab-separated sidecar: refuse tabs and line breaks now, not after the run. */
function checked(ds: Dataset): Dataset {
  for (const item of ds.items) {
    for (const [what, value] of [['id', item.id], ['label', item.label]] as const) {
      if (value !== undefined && /[\t\r\n]/.test(value)) {
        throw new RangeError(`${ds.source}: expected ${what}s without tabs or line breaks (they go to the .ids.tsv sidecar), found ${describe(value)}`);
      }
    }
  }
  return ds;
}

function assertDirectory(name: string, dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir === '') fail(TypeError, name, 'a folder path', dir);
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {}
  if (!ok) throw new RangeError(`${name}: expected an existing folder, received '${dir}'`);
}

/** One CSV line: comma-separated, fields optionally "quoted" with "" for a quote. */
function splitCsv(line: string, file: string, n: number): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new FileFormatError(file, `line ${n}: expected a closing quote, found end of line`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') throw new FileFormatError(file, `line ${n}: expected a comma after a quoted field, found '${line[i]}'`);
    } else {
      const j = line.indexOf(',', i);
      field = line.slice(i, j < 0 ? line.length : j);
      i = j < 0 ? line.length : j;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}
