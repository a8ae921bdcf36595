// The alignment cache's writes: a folder listing per shard folder, not per new file (writeFileAtomic
// lists a folder for each new name to remove dead writers' temp files, O(n^2) for a large set), with
// dead writers' temp files still removed before the cache writes into their folder.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mock, test } from 'node:test';
import { AlignCache, type AlignRecord } from '../src/faces/cache';
import { deadPid, tempDir } from './helpers/io';
import sharedFs = require('node:fs');

const dir = tempDir();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('n entries: at most one listing per shard folder (256) and the settings file, not one per new file', () => {
  const N = 400;
  const hashes = Array.from({ length: N }, (_, i) => sha(`image ${i}`));
  const listings = mock.method(sharedFs, 'readdirSync');
  try {
    const cache = new AlignCache(path.join(dir, 'big'), { detector: 'test' });
    hashes.forEach((h, i) => {
      const record: AlignRecord = i % 2 ? { faces: 0, crop: false, failure: { kind: 'no face', reason: 'none' } } : { faces: 1, crop: true };
      cache.put(h, record, record.crop ? Buffer.from(`png ${i}`) : undefined);
    });
    const folders = new Set(hashes.map((h) => h.slice(0, 2))).size;
    assert.ok(listings.mock.callCount() <= folders + 1, `${listings.mock.callCount()} listings for ${N} entries (${N * 1.5} files) in ${folders} folders`);
    // Every entry reads back whole.
    hashes.forEach((h, i) => {
      const got = cache.get(h);
      assert.equal(got?.crop, i % 2 === 0);
      if (got?.crop) assert.equal(fs.readFileSync(cache.cropPath(h), 'utf8'), `png ${i}`);
    });
  } finally {
    listings.mock.restore();
  }
});

test('a dead writer\'s temp files in a shard folder are removed by the cache\'s first write there; a live writer\'s and other files are kept', () => {
  const root = path.join(dir, 'stale');
  const first = new AlignCache(root, { detector: 'test' });
  const h = sha('stale');
  const shard = path.join(first.dir, h.slice(0, 2));
  fs.mkdirSync(shard, { recursive: true });
  const dead = deadPid();
  // Temps of other entries' names too: the cache writes each name once, so its one listing takes them all.
  const stale = [`.${h}.png.${dead}.0123456789ab.tmp`, `.${sha('other')}.json.${dead}.0123456789ab.tmp`];
  const kept = [`.${h}.json.${process.pid}.0123456789ab.tmp`, `.${h}.json.notapid.0123456789ab.tmp`, `.${h}.json.${dead}.xyz.tmp`, 'notes.txt'];
  for (const name of [...stale, ...kept]) fs.writeFileSync(path.join(shard, name), 'x');
  new AlignCache(root, { detector: 'test' }).put(h, { faces: 1, crop: true }, Buffer.from('png'));
  for (const name of stale) assert.ok(!fs.existsSync(path.join(shard, name)), `${name} removed`);
  for (const name of kept) assert.ok(fs.existsSync(path.join(shard, name)), `${name} kept`);
});
