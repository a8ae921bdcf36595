import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeFileAtomic } from '../src/io';
import { tempDir, tempFiles } from './helpers/io';

const dir = tempDir();

test('writes the chunks in sequence, whatever their view type and offset, and leaves no temp file', () => {
  const f = path.join(dir, 'seq.bin');
  const f64 = Float64Array.of(1, 2, 3, 4);
  const chunks = [Uint8Array.of(1, 2, 3), f64.subarray(1, 3), new DataView(Uint8Array.of(9, 8, 7, 6).buffer, 1, 2), new Uint8Array(0)];
  writeFileAtomic(f, chunks);
  const expected = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(f64.buffer, 8, 16), Buffer.from([8, 7])]);
  assert.deepEqual(fs.readFileSync(f), expected);
  assert.deepEqual(tempFiles(dir), []);
});

test('an error thrown midway by the chunk source keeps the previous file and removes the temp file', () => {
  const f = path.join(dir, 'keep.bin');
  fs.writeFileSync(f, 'previous');
  const boom = new Error('source failed');
  let tempSeen: string[] = [];
  function* chunks() {
    yield Buffer.from('new content, part 1');
    tempSeen = tempFiles(dir);
    throw boom;
  }
  assert.throws(() => writeFileAtomic(f, chunks()), (err) => err === boom);
  assert.equal(tempSeen.length, 1);
  assert.match(tempSeen[0], new RegExp(`^\\.keep\\.bin\\.${process.pid}\\.[0-9a-f]+\\.tmp$`));
  assert.equal(fs.readFileSync(f, 'utf8'), 'previous');
  assert.deepEqual(tempFiles(dir), []);
});

test('a chunk of the wrong type is a TypeError naming it; the previous file stays intact', () => {
  const f = path.join(dir, 'typed.bin');
  fs.writeFileSync(f, 'previous');
  assert.throws(() => writeFileAtomic(f, [Buffer.from('ok'), 'text' as never]), /chunks\[1\]: expected a Uint8Array or ArrayBufferView, received string "text"/);
  assert.equal(fs.readFileSync(f, 'utf8'), 'previous');
  assert.deepEqual(tempFiles(dir), []);
});

test('a failing rename (target is a directory) removes the temp file', () => {
  const target = path.join(dir, 'a-directory');
  fs.mkdirSync(target);
  assert.throws(() => writeFileAtomic(target, [Buffer.from('x')]), /EISDIR|ENOTEMPTY|EEXIST|EPERM/);
  assert.ok(fs.statSync(target).isDirectory());
  assert.deepEqual(tempFiles(dir), []);
});

test('rejects bad arguments and missing directories without creating anything', () => {
  assert.throws(() => writeFileAtomic('', []), /path: expected a non-empty path string/);
  assert.throws(() => writeFileAtomic(path.join(dir, 'x'), 5 as never), /chunks: expected an iterable of Uint8Array\/ArrayBufferView, received number 5/);
  // The missing folder is named, not the temp file that could not be created in it.
  const missing = path.join(dir, 'no', 'such', 'dir.bin');
  assert.throws(() => writeFileAtomic(missing, [Buffer.from('x')]), (err: Error) => err.message === `${missing}: cannot write the file: its folder ${path.dirname(missing)} does not exist or is not a folder`);
  assert.ok(!fs.existsSync(path.join(dir, 'x')));
});
