// Atomic file replacement: readers see either the old file or the complete new one, never a
// partial write, even if the process dies midway. The payload is streamed chunk by chunk, so a
// multi-GB embedding set is never concatenated into one buffer.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/validate';
import { MAX_IO_BYTES, assertPath, bytesOf } from './binary';

/**
 * Writes `chunks` in sequence to a temp file next to `file` (`.name.<pid>.<random>.tmp`), fsyncs it,
 * renames it over `file` and fsyncs the directory. On any error, including one thrown by the
 * `chunks` iterator, the temp file is removed, `file` is left untouched and the error is rethrown.
 */
export function writeFileAtomic(file: string, chunks: Iterable<ArrayBufferView>): void {
  assertPath('path', file);
  if (chunks == null || typeof (chunks as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    fail(TypeError, 'chunks', 'an iterable of Uint8Array/ArrayBufferView', chunks);
  }
  const dir = path.dirname(file);
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
