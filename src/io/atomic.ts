// Atomic file replacement: readers see either the old file or the complete new one, never a
// partial write, even if the process dies midway. The payload is streamed chunk by chunk, so a
// multi-GB embedding set is never concatenated into one buffer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/validate';
import { MAX_IO_BYTES, assertPath, bytesOf } from './binary';

export interface AtomicWriteOptions {
  /**
   * The caller removed dead writers' temp files from the folder itself (removeDeadTemps) before its
   * first write there: the folder listing each new name otherwise costs is skipped, so n new files
   * in one folder cost one listing, not n. (A writer that dies after that listing leaves its temp
   * file to the next process's cleaning.)
   */
  folderCleaned?: boolean;
}

/**
 * Writes `chunks` in sequence to a temp file next to `file` (`.name.<pid>.<random>.tmp`), fsyncs it,
 * renames it over `file` and fsyncs the directory. On any error, including one thrown by the
 * `chunks` iterator, the temp file is removed, `file` is left untouched and the error is rethrown.
 * Temp files for `file` left by an embmap process that died (kill -9) are removed first, unless
 * `options.folderCleaned`.
 */
export function writeFileAtomic(file: string, chunks: Iterable<ArrayBufferView>, options: AtomicWriteOptions = {}): void {
  assertPath('path', file);
  if (chunks == null || typeof (chunks as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    fail(TypeError, 'chunks', 'an iterable of Uint8Array/ArrayBufferView', chunks);
  }
  const dir = path.dirname(file);
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`${file}: cannot write the file: its folder ${dir} does not exist or is not a folder`);
  }
  if (!options.folderCleaned) removeStaleTemps(dir, path.basename(file));
  // node:crypto is loaded here, not at require time: initialising it costs ~10 ms of require('embmap').
  const { randomBytes } = require('node:crypto') as typeof import('node:crypto'); // eslint-disable-line @typescript-eslint/no-require-imports
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined = fs.openSync(tmp, 'wx');
  try {
    let i = 0;
    for (const chunk of chunks) {
      if (!ArrayBuffer.isView(chunk)) fail(TypeError, `chunks[${i}]`, 'a Uint8Array or ArrayBufferView', chunk);
      writeAll(fd, bytesOf(chunk));
      i++;
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    // Cleanup failures must not mask the original error.
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
    try {
      fs.unlinkSync(tmp);
    } catch {}
    throw err;
  }
  syncDirectory(dir);
}

// A temp file's name: `.NAME.<pid>.<12 hex>.tmp` (the suffix's fixed form makes NAME unambiguous).
const TEMP = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;

// Folders and names already cleaned by this process: each is scanned once, not on every write.
const cleaned = new Set<string>();

/** Deletes the temp files of `name` whose writer died; see removeDeadTemps. */
function removeStaleTemps(dir: string, name: string): void {
  const key = path.join(path.resolve(dir), name);
  if (cleaned.has(key)) return;
  cleaned.add(key);
  removeTemps(dir, (entry) => tempWriter(entry, name));
}

/**
 * Deletes every `.NAME.<pid>.<12 hex>.tmp` file in `dir` whose process is gone (one listing): that
 * exact form is what only writeFileAtomic creates. Anything else, or a live writer's temp, is left
 * alone. For callers that then write with `folderCleaned`.
 */
export function removeDeadTemps(dir: string): void {
  removeTemps(dir, (entry) => {
    const m = TEMP.exec(entry);
    return m ? Number(m[2]) : undefined;
  });
}

function removeTemps(dir: string, writerOf: (entry: string) => number | undefined): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = writerOf(entry);
    if (pid === undefined || isAlive(pid)) continue;
    try {
      if (fs.lstatSync(path.join(dir, entry)).isFile()) fs.unlinkSync(path.join(dir, entry));
    } catch {}
  }
}

/** The pid in `entry` when it is the name writeFileAtomic gives a temp file for `name`, else undefined. */
export function tempWriter(entry: string, name: string): number | undefined {
  const m = TEMP.exec(entry);
  return m && m[1] === name ? Number(m[2]) : undefined;
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; ) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, MAX_IO_BYTES));
  }
}

/** Makes the rename durable. Windows cannot open directories; some filesystems answer EINVAL (no dir sync). */
function syncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    fs.closeSync(fd);
  }
}
