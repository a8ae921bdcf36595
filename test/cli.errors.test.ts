// The command line under careless use: a closed output pipe, and messages that speak to a CLI user.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { saveEmbeddings } from '../src/io/embeddings';
import { tempDir } from './helpers/io';
import { makeRng, randn } from './helpers/random';

const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const dir = tempDir();
const rng = makeRng('cli.errors');

test('`embmap ... | head`: a reader closing the pipe early ends the command quietly, no EPIPE stack trace', async () => {
  saveEmbeddings(path.join(dir, 'big.npy'), { matrix: randn(rng, 3, 2, 'float32'), ids: ['x', 'y', 'z'] });
  for (const args of [['inspect', path.join(dir, 'big.npy'), '--json'], ['import', '--list'], ['--help']]) {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.doesNotMatch(stderr, /EPIPE|Error/, args.join(' '));
    assert.ok(code === 0 || code === 1, `${args.join(' ')}: exit ${code}`);
  }
});

test('fit with partly matching ids suggests what a CLI user can do, not a library option', () => {
  saveEmbeddings(path.join(dir, 'a.npy'), { matrix: randn(rng, 4, 2, 'float32'), ids: ['a', 'b', 'c', 'd'] });
  saveEmbeddings(path.join(dir, 'b.npy'), { matrix: randn(rng, 4, 2, 'float32'), ids: ['a', 'b', 'c', 'e'] });
  const r = spawnSync(process.execPath, [cli, 'fit', '--source', path.join(dir, 'a.npy'), '--target', path.join(dir, 'b.npy'), '--out', path.join(dir, 'm.safetensors')], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /only 3 id\(s\) are shared: give both sets the same rows/);
  assert.doesNotMatch(r.stderr, /pass \{ allowPartial/);
});
