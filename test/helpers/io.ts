// Shared by the io.*.test.ts files: temp dirs, byte comparisons, corrupt-file assertions and the
// optional NumPy interop runner.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { FileFormatError } from '../../src/io';

/** A fresh directory under os.tmpdir(), removed after the calling test file finishes. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'embmap-io-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function hex(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

/** The pid of a process that has exited: the writer of a temp file left by a killed process. */
export function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

export function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'));
}

let numpyProbe: { reason: string | undefined } | undefined;

/** Why NumPy interop tests skip, or undefined when python3 can import numpy (probed once). */
export function numpySkip(): string | undefined {
  if (numpyProbe === undefined) {
    const r = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    const reason = r.error
      ? `python3 not available (${r.error.message})`
      : r.status === 0
        ? undefined
        : `python3 cannot import numpy: ${r.stderr.trim().split('\n').pop()}`;
    numpyProbe = { reason };
  }
  return numpyProbe.reason;
}

/** Runs a Python script with arguments and returns its stdout parsed as JSON. */
export function python(script: string, ...args: string[]): unknown {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed (status ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Asserts `fn` throws a FileFormatError for `file` whose message matches `pattern`. */
export function assertFormatError(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FileFormatError, `expected a FileFormatError, received ${String(err)}`);
    assert.equal(err.path, file);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}
