// Embedding sets on disk: the matrix as X.npy, or X.safetensors with one tensor "embeddings", plus a
// sidecar X.npy.ids.tsv (named from the whole file name, so X.npy and X.safetensors never share
// one) naming the rows: a header line "id\tlabel" (just "id" when the set has no
// labels), then one line per matrix row. Ids are unique, non-empty and free of tabs and newlines.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Matrix } from '../core/matrix';
import { assertBoolean, assertMatrix, describe, fail } from '../core/validate';
import { writeFileAtomic } from './atomic';
import { FileFormatError, assertPath } from './binary';
import { readNpy, writeNpy } from './npy';
import { readSafetensors, writeSafetensors } from './safetensors';

export interface EmbeddingSet {
  matrix: Matrix;
  /** One id per matrix row. */
  ids: string[];
  labels?: string[];
}

export interface LoadedEmbeddingSet extends EmbeddingSet {
  /** False when there was no sidecar and the ids are the row numbers "0", "1", ... */
  idsFromSidecar: boolean;
}

export interface PairedEmbeddings {
  /** Rows of a, in a's order; the same object as a.matrix when no row was dropped. */
  source: Matrix;
  /** Rows of b reordered to match; the same object as b.matrix when already in that order. */
  target: Matrix;
  ids: string[];
  /** Rows of a and of b left out because their id is absent from the other set (allowPartial only). */
  droppedSource: number;
  droppedTarget: number;
}

/** The tensor holding the matrix in a .safetensors embedding file. */
export const EMBEDDINGS_TENSOR = 'embeddings';

/** X.npy -> X.npy.ids.tsv, the sidecar every write uses. */
export function sidecarPath(file: string): string {
  assertPath('path', file);
  return `${file}.ids.tsv`;
}

/**
 * The sidecar a read uses: X.npy.ids.tsv, else the X.ids.tsv that earlier versions wrote, but only
 * while no other embedding file X.* exists that it could belong to (then it is ambiguous: an error).
 */
export function readableSidecarPath(file: string): string {
  const current = sidecarPath(file);
  const stem = file.slice(0, file.length - path.extname(file).length);
  const legacy = `${stem}.ids.tsv`;
  if (fs.existsSync(current) || !fs.existsSync(legacy)) return current;
  const others = ['.npy', '.safetensors'].map((ext) => stem + ext).filter((f) => f !== file && fs.existsSync(f));
  if (others.length > 0) {
    throw new FileFormatError(legacy, `an ids sidecar in the old naming, shared by ${file} and ${others.join(', ')}: expected ${current}; rename it to the sidecar of the file it belongs to`);
  }
  return legacy;
}

/** Writes the matrix (format chosen by the extension) then the sidecar, each atomically. */
export function saveEmbeddings(file: string, set: EmbeddingSet): void {
  const format = formatOf(file);
  assertEmbeddingSet('set', set);
  if (format === 'npy') writeNpy(file, set.matrix);
  else writeSafetensors(file, { [EMBEDDINGS_TENSOR]: set.matrix });
  writeFileAtomic(sidecarPath(file), sidecarChunks(set.ids, set.labels));
}

/** Reads an embedding set; without a sidecar the ids are the row numbers and idsFromSidecar is false. */
export function loadEmbeddings(file: string): LoadedEmbeddingSet {
  const format = formatOf(file);
  const sidecar = readableSidecarPath(file);
  // The sidecar is parsed first: it is small, and a bad one should fail before a large matrix read.
  const rows = readSidecar(file);
  const matrix =
    format === 'npy'
      ? readNpy(file)
      : readSafetensors(file, { names: [EMBEDDINGS_TENSOR] }).tensorAsMatrix(EMBEDDINGS_TENSOR);
  if (rows === undefined) {
    return { matrix, ids: Array.from({ length: matrix.rows }, (_, i) => String(i)), idsFromSidecar: false };
  }
  if (rows.ids.length !== matrix.rows) {
    throw new FileFormatError(sidecar, `expected ${matrix.rows} id rows (the rows of ${file}), found ${rows.ids.length}`);
  }
  return { matrix, ...rows, idsFromSidecar: true };
}

/** The ids (and labels) of an embedding file's sidecar, validated; undefined when it has none. */
export function readSidecar(file: string): { ids: string[]; labels?: string[] } | undefined {
  const sidecar = readableSidecarPath(file);
  let text: string;
  try {
    text = fs.readFileSync(sidecar, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Error(`${sidecar}: cannot read the ids sidecar: ${code ?? (err as Error).message}`);
  }
  return parseSidecar(sidecar, text);
}

/** Validates a set: a Matrix, one valid unique id per row, and optional labels without tabs or newlines. */
export function assertEmbeddingSet(name: string, set: unknown): asserts set is EmbeddingSet {
  if (set === null || typeof set !== 'object') fail(TypeError, name, 'an EmbeddingSet {matrix, ids, labels?}', set);
  const { matrix, ids, labels } = set as Partial<EmbeddingSet>;
  assertMatrix(`${name}.matrix`, matrix);
  if (!Array.isArray(ids)) fail(TypeError, `${name}.ids`, 'an array of strings', ids);
  if (ids.length !== matrix.rows) fail(RangeError, `${name}.ids`, `${matrix.rows} ids (one per matrix row)`, ids);
  const problem = idProblem(ids);
  if (problem !== undefined) {
    const { index, duplicateOf } = problem;
    const expected = duplicateOf === undefined ? VALID_ID : `a unique id (ids[${duplicateOf}] is the same)`;
    fail(typeof ids[index] === 'string' ? RangeError : TypeError, `${name}.ids[${index}]`, expected, ids[index]);
  }
  if (labels === undefined) return;
  if (!Array.isArray(labels)) fail(TypeError, `${name}.labels`, 'an array of strings', labels);
  if (labels.length !== matrix.rows) fail(RangeError, `${name}.labels`, `${matrix.rows} labels (one per matrix row)`, labels);
  const bad = labels.findIndex((l) => typeof l !== 'string' || /[\t\n\r]/.test(l));
  if (bad >= 0) fail(TypeError, `${name}.labels[${bad}]`, 'a string without tab or newline', labels[bad]);
}

/** Pairs rows of a and b by id, in a's order. Ids in only one set are an error unless allowPartial. */
export function pairById(a: EmbeddingSet, b: EmbeddingSet, options: { allowPartial?: boolean } = {}): PairedEmbeddings {
  assertEmbeddingSet('a', a);
  assertEmbeddingSet('b', b);
  const allowPartial = options.allowPartial ?? false;
  assertBoolean('options.allowPartial', allowPartial);
  const rowOfB = new Map(b.ids.map((id, j) => [id, j]));
  const rowsA: number[] = [];
  const rowsB: number[] = [];
  const onlyA: string[] = [];
  a.ids.forEach((id, i) => {
    const j = rowOfB.get(id);
    if (j === undefined) onlyA.push(id);
    else {
      rowsA.push(i);
      rowsB.push(j);
    }
  });
  const droppedTarget = b.ids.length - rowsB.length;
  if ((onlyA.length > 0 || droppedTarget > 0) && (!allowPartial || rowsA.length === 0)) {
    const inA = new Set(a.ids);
    const onlyB = b.ids.filter((id) => !inA.has(id));
    const first = (ids: string[]) => ids.slice(0, 5).map((id) => JSON.stringify(id)).join(', ') + (ids.length > 5 ? ', ...' : '');
    const found = [
      onlyA.length > 0 ? `${onlyA.length} id(s) of a missing from b (${first(onlyA)})` : '',
      onlyB.length > 0 ? `${onlyB.length} id(s) of b missing from a (${first(onlyB)})` : '',
    ].filter(Boolean);
    // Worded for command-line users too, who have no allowPartial.
    const hint = rowsA.length === 0 ? 'a and b share no ids' : `only ${rowsA.length} id(s) are shared: give both sets the same rows (library: pairById's allowPartial option keeps the shared ones)`;
    throw new RangeError(`pairById: expected a and b to have the same ids, found ${found.join(' and ')}; ${hint}`);
  }
  const inOrder = rowsB.length === b.matrix.rows && rowsB.every((j, k) => j === k);
  return {
    source: onlyA.length === 0 ? a.matrix : a.matrix.takeRows(rowsA),
    target: inOrder ? b.matrix : b.matrix.takeRows(rowsB),
    ids: rowsA.map((i) => a.ids[i]),
    droppedSource: onlyA.length,
    droppedTarget,
  };
}

/** NaN/Inf check that names the first offending row by its id. */
export function assertFiniteRows(name: string, set: EmbeddingSet): void {
  assertEmbeddingSet(name, set);
  const { data, cols } = set.matrix;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const row = Math.floor(i / cols);
      throw new RangeError(
        `${name}: expected finite values, received ${data[i]} at row ${row} (id ${JSON.stringify(set.ids[row])}), column ${i % cols}`,
      );
    }
  }
}

const VALID_ID = 'a non-empty id without tab or newline';

function formatOf(file: string): 'npy' | 'safetensors' {
  assertPath('path', file);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') return 'npy';
  if (ext === '.safetensors') return 'safetensors';
  fail(RangeError, 'path', 'a file name ending in .npy or .safetensors', file);
}

/** The first invalid or repeated id, if any. */
function idProblem(ids: readonly unknown[]): { index: number; duplicateOf?: number } | undefined {
  const seen = new Map<string, number>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'string' || id === '' || /[\t\n\r]/.test(id)) return { index: i };
    const first = seen.get(id);
    if (first !== undefined) return { index: i, duplicateOf: first };
    seen.set(id, i);
  }
  return undefined;
}

/** Sidecar text in ~1 MiB pieces, so millions of ids never form one giant string. */
function* sidecarChunks(ids: readonly string[], labels: readonly string[] | undefined): Generator<Uint8Array> {
  let text = labels ? 'id\tlabel\n' : 'id\n';
  for (let i = 0; i < ids.length; i++) {
    text += labels ? `${ids[i]}\t${labels[i]}\n` : `${ids[i]}\n`;
    if (text.length >= 1 << 20) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
  yield Buffer.from(text, 'utf8');
}

/** Parses a sidecar (LF or CRLF line ends); errors name the file and 1-based line. */
function parseSidecar(file: string, text: string): { ids: string[]; labels?: string[] } {
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop();
  const header = lines[0] ?? '';
  const withLabels = header === 'id\tlabel';
  if (!withLabels && header !== 'id') {
    throw new FileFormatError(file, `line 1: expected the header "id\\tlabel" or "id", found ${describe(header)}`);
  }
  const width = withLabels ? 2 : 1;
  const ids: string[] = [];
  const labels: string[] = [];
  for (let n = 1; n < lines.length; n++) {
    const fields = lines[n].split('\t');
    if (fields.length !== width) {
      throw new FileFormatError(file, `line ${n + 1}: expected ${width} tab-separated field(s), found ${fields.length}`);
    }
    ids.push(fields[0]);
    if (withLabels) labels.push(fields[1]);
  }
  const problem = idProblem(ids);
  if (problem !== undefined) {
    const { index, duplicateOf } = problem;
    const expected = duplicateOf === undefined ? VALID_ID : `a unique id (line ${duplicateOf + 2} is the same)`;
    throw new FileFormatError(file, `line ${index + 2}: expected ${expected}, found ${describe(ids[index])}`);
  }
  return withLabels ? { ids, labels } : { ids };
}

