// The resumable state of an extraction, in a folder beside the first output:
//   progress.json  how many dataset items are done, the rows written, the images skipped, per-run counts
//   <k>.f32        output k's rows so far, raw float32
//   lock           the pid of the process writing it
//   .embmap-checkpoint  the marker saying embmap made the folder: a folder without it (or a symlink)
//                  is refused, never taken over or deleted
// Each batch is written at its row offset and fsynced BEFORE progress.json is replaced atomically,
// so after a SIGKILL at any moment the record never counts rows that are not on disk; rows past the
// record (a batch written but not recorded) are cut off on resume and computed again. The writes run
// on a writer thread (checkpoint-writer.ts), in order, while the next batch is being computed.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { allocate } from '../core/matrix';
import { isAlive, tempWriter, writeFileAtomic } from '../io/atomic';
import { FileFormatError, readExact } from '../io/binary';
import type { WriteReply, WriteRequest } from './checkpoint-writer';

export interface SkippedImage {
  /** Position in the dataset. */
  index: number;
  id: string;
  path: string;
  reason: string;
}

/** What the checkpoint was computed from: a resume with other models or images is refused. */
export interface Fingerprint {
  /** One entry per output file: model hash, card, tensor. */
  outputs: string[];
  /** Hash of the dataset's ids and paths in order. */
  dataset: string;
}

export interface ProgressRecord {
  version: 1;
  fingerprint: Fingerprint;
  /** Values per row of each output. */
  dims: number[];
  total: number;
  /** Dataset items processed (written or skipped), always a prefix of the dataset. */
  done: number;
  /** Rows written to each output (done minus skipped). */
  rows: number;
  skipped: SkippedImage[];
  /** Per run: where it started, how many items it computed, in how many batches. */
  runs: { started: string; from: number; computed: number; batches: number }[];
}

export function datasetHash(items: readonly { id: string; path: string; view?: object }[]): string {
  const h = createHash('sha256');
  // A view's parameters (they change with the seed, the id does not) are part of what is computed.
  for (const it of items) h.update(it.view ? `${it.id}\t${it.path}\t${JSON.stringify(it.view)}\n` : `${it.id}\t${it.path}\n`);
  return h.digest('hex');
}

export class Checkpoint {
  readonly dir: string;
  private record: ProgressRecord;
  private readonly fds: number[];
  private readonly lockFile: string;
  private writer: Worker | undefined;
  /** Ids of the last write request posted and the last one answered; flush() waits for them to meet. */
  private queued = -1;
  private written = -1;
  private flushers: (() => void)[] = [];
  private failure: Error | undefined;

  private constructor(dir: string, record: ProgressRecord, fds: number[], lockFile: string) {
    this.dir = dir;
    this.record = record;
    this.fds = fds;
    this.lockFile = lockFile;
  }

  /**
   * Opens the checkpoint in `dir`, resuming it when its fingerprint matches, creating it when absent
   * (or when `restart`). A checkpoint of another extraction is an error that says what differs.
   */
  static open(dir: string, fingerprint: Fingerprint, dims: number[], total: number, options: { restart?: boolean } = {}): Checkpoint {
    claimFolder(dir, dims.length);
    const lockFile = path.join(dir, 'lock');
    takeLock(lockFile, dir);
    try {
      const progress = path.join(dir, 'progress.json');
      let record: ProgressRecord | undefined;
      // Restarting: the old record goes first, so a kill while the data files are emptied leaves no record to trust.
      if (options.restart) fs.rmSync(progress, { force: true });
      if (fs.existsSync(progress)) {
        record = readRecord(progress);
        const problem = mismatch(record, fingerprint, dims, total);
        if (problem) throw new Error(`${dir}: a checkpoint of another extraction (${problem}); pass --restart (restart: true) to discard it, or remove the folder`);
      }
      record ??= { version: 1, fingerprint, dims, total, done: 0, rows: 0, skipped: [], runs: [] };
      record.runs.push({ started: new Date().toISOString(), from: record.done, computed: 0, batches: 0 });
      const fds = dims.map((dim, k) => {
        const file = path.join(dir, `${k}.f32`);
        const fd = fs.openSync(file, fs.existsSync(file) && record!.rows > 0 ? 'r+' : 'w+');
        const expected = record!.rows * dim * 4;
        const size = fs.fstatSync(fd).size;
        if (size < expected) {
          fs.closeSync(fd);
          throw new FileFormatError(file, `checkpoint data: expected at least ${expected} bytes for ${record!.rows} recorded rows, found ${size}; pass --restart to start over`);
        }
        // Rows of a batch written but never recorded: recomputed, so dropped here.
        if (size > expected) fs.ftruncateSync(fd, expected);
        return fd;
      });
      const cp = new Checkpoint(dir, record, fds, lockFile);
      cp.saveRecord();
      return cp;
    } catch (err) {
      fs.rmSync(lockFile, { force: true });
      throw err;
    }
  }

  /** Items done by the checkpoint in `dir` as its record says (0 when there is none or it is unreadable), without opening it. */
  static recordedDone(dir: string): number {
    // Not through a symlink (open() refuses those); a foreign folder's record is refused by open() too.
    if (!fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return 0;
    try {
      const done = JSON.parse(fs.readFileSync(path.join(dir, 'progress.json'), 'utf8')).done;
      return Number.isInteger(done) && done > 0 ? done : 0;
    } catch {
      return 0;
    }
  }

  get progress(): Readonly<ProgressRecord> {
    return this.record;
  }

  /**
   * Appends a batch: `outputs[k]` holds n rows of output k; `done` is the dataset position after the
   * batch and `skipped` its images that could not be read. Queued to the writer thread (data first,
   * fsynced, then the record); `progress` counts it at once, the disk once flush() returns. A write
   * error is thrown by the next append() or flush().
   */
  append(done: number, n: number, outputs: Float32Array[], skipped: SkippedImage[]): void {
    if (this.failure) throw this.failure;
    const r = this.record;
    const writes = outputs.map((data, k) => {
      if (data.length !== n * r.dims[k]) throw new RangeError(`output ${k}: expected ${n} x ${r.dims[k]} values, received ${data.length}`);
      return { fd: this.fds[k], position: r.rows * r.dims[k] * 4, data };
    });
    const run = r.runs[r.runs.length - 1];
    run.computed += done - r.done;
    run.batches += 1;
    r.done = done;
    r.rows += n;
    r.skipped.push(...skipped);
    const request: WriteRequest = { id: ++this.queued, writes, recordFile: path.join(this.dir, 'progress.json'), record: recordText(r) };
    this.startWriter().postMessage(request);
  }

  /** Waits until every queued batch is on disk; throws the first write error. */
  async flush(): Promise<void> {
    if (this.written < this.queued) await new Promise<void>((resolve) => this.flushers.push(resolve));
    if (this.failure) throw this.failure;
  }

  /** Output k's rows so far (rows x dims[k] float32 values); call flush() first. */
  read(k: number): Float32Array {
    const out = allocate('float32', this.record.rows * this.record.dims[k]) as Float32Array;
    readExact(this.fds[k], new Uint8Array(out.buffer), 0, path.join(this.dir, `${k}.f32`), 'checkpoint data');
    return out;
  }

  /** Waits for queued writes, closes the files and releases the lock, keeping the checkpoint for a later resume. */
  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    const writer = this.writer;
    this.writer = undefined;
    await writer?.terminate();
    for (const fd of this.fds.splice(0)) fs.closeSync(fd);
    fs.rmSync(this.lockFile, { force: true });
  }

  /** Deletes the checkpoint (once the final outputs are written): its own files, then the folder if nothing else is in it. */
  async remove(): Promise<void> {
    await this.close();
    for (const name of [...ownFiles(this.record.dims.length), MARKER]) fs.rmSync(path.join(this.dir, name), { force: true });
    try {
      fs.rmdirSync(this.dir);
    } catch {}
  }

  private startWriter(): Worker {
    if (this.writer) return this.writer;
    const writer = new Worker(path.join(__dirname, 'checkpoint-writer.js'));
    // The writer answers in request order; reply k means requests 0..k are done.
    const settled = (id: number, failure?: string) => {
      if (failure) this.failure ??= new Error(`${this.dir}: cannot write the checkpoint: ${failure}`);
      this.written = id;
      if (this.written >= this.queued) for (const resolve of this.flushers.splice(0)) resolve();
    };
    writer.on('message', (reply: WriteReply) => settled(reply.id, reply.error));
    writer.on('error', (err) => settled(this.queued, `writer thread failed: ${err.message}`));
    writer.on('exit', (code) => {
      if (this.writer === writer) settled(this.queued, `writer thread exited (code ${code})`);
    });
    this.writer = writer;
    return writer;
  }

  private saveRecord(): void {
    writeFileAtomic(path.join(this.dir, 'progress.json'), [Buffer.from(recordText(this.record))]);
  }
}

function recordText(r: ProgressRecord): string {
  return JSON.stringify(r, null, 1) + '\n';
}

function readRecord(file: string): ProgressRecord {
  let r: ProgressRecord;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FileFormatError(file, `expected a JSON progress record: ${(err as Error).message}; pass --restart to start over`);
  }
  const ok = r && r.version === 1 && Array.isArray(r.dims) && Number.isInteger(r.done) && Number.isInteger(r.rows) && Array.isArray(r.skipped) && Array.isArray(r.runs) && r.fingerprint;
  if (!ok) throw new FileFormatError(file, 'expected an embmap extract progress record (version 1); pass --restart to start over');
  return r;
}

function mismatch(r: ProgressRecord, f: Fingerprint, dims: number[], total: number): string | undefined {
  if (r.fingerprint.dataset !== f.dataset || r.total !== total) return 'the images differ';
  if (r.fingerprint.outputs.length !== f.outputs.length) return `it has ${r.fingerprint.outputs.length} outputs, this run ${f.outputs.length}`;
  const k = r.fingerprint.outputs.findIndex((o, i) => o !== f.outputs[i]);
  if (k >= 0) return `output ${k + 1} comes from another model, card or tensor`;
  if (r.dims.join() !== dims.join()) return `output sizes [${r.dims}] differ from [${dims}]`;
  return undefined;
}

const MARKER = '.embmap-checkpoint';

/** The files a checkpoint of `outputs` outputs writes, besides its marker. */
function ownFiles(outputs: number): string[] {
  return ['progress.json', 'lock', ...Array.from({ length: outputs }, (_, k) => `${k}.f32`)];
}

/**
 * Creates the checkpoint folder with its marker, or checks an existing one is embmap's. A folder
 * from an earlier version (no marker) is adopted only when it holds nothing but a checkpoint's
 * files and a readable progress record; anything else is refused, so no one's data is overwritten
 * or deleted and no symlink leads the writes elsewhere.
 */
function claimFolder(dir: string, outputs: number): void {
  const refuse = (found: string): never => {
    throw new Error(`${dir}: expected an extraction checkpoint folder made by embmap (with its ${MARKER} marker), found ${found}; move it away or choose another --out`);
  };
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st === undefined) {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, MARKER), 'embmap extract checkpoint\n');
    return;
  }
  if (st.isSymbolicLink()) refuse('a symbolic link');
  if (!st.isDirectory()) refuse('a file');
  if (fs.existsSync(path.join(dir, MARKER))) return;
  const known = new Set(ownFiles(outputs));
  const foreign = fs.readdirSync(dir).filter((f) => !known.has(f) && tempWriter(f, 'progress.json') === undefined);
  if (foreign.length > 0) refuse(`a folder holding other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''})`);
  try {
    readRecord(path.join(dir, 'progress.json'));
  } catch {
    refuse('a folder without a readable embmap progress record');
  }
  fs.writeFileSync(path.join(dir, MARKER), 'embmap extract checkpoint\n');
}

/** One writer per checkpoint: a lock holding the writer's pid, taken over when that process is gone. */
function takeLock(file: string, dir: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(fs.readFileSync(file, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new Error(`${dir}: expected no other extraction writing this checkpoint, process ${pid} holds its lock`);
    }
    fs.rmSync(file, { force: true }); // stale: its writer died (e.g. SIGKILL)
  }
  throw new Error(`${dir}: could not take the checkpoint lock ${file}`);
}

