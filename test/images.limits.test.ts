// Images claiming more pixels than the decode limit are refused from their header, with the reason,
// before their pixels are allocated; decode errors are one line.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { MAX_PIXELS, decodeImage, decodeImageBytes } from '../src/images/preprocess';
import { tempDir } from './helpers/io';
import { writePngBomb } from './helpers/png-bomb';

const dir = tempDir();

test('a 15000² PNG bomb is refused by the pixel limit, naming its size, without decoding it', async () => {
  const file = path.join(dir, 'bomb.png');
  await writePngBomb(file, 15000, 15000);
  assert.ok(fs.statSync(file).size < 2e6, 'the bomb is small on disk');
  const rss = process.memoryUsage().rss;
  await assert.rejects(decodeImage(file), (err: Error) => err.message === `${file}: expected an image of at most ${MAX_PIXELS} pixels (the decode limit, --max-pixels), found 15000 x 15000 = 225000000 pixels`);
  assert.ok(process.memoryUsage().rss - rss < 100e6, 'nothing near 675 MB was allocated');
});

test('the limit is a parameter: a small PNG passes at its size and is refused one pixel below', async () => {
  const file = path.join(dir, 'small.png');
  await writePngBomb(file, 40, 30);
  const image = await decodeImage(file, 1200);
  assert.deepEqual([image.width, image.height, image.data.length], [40, 30, 3600]);
  await assert.rejects(decodeImage(file, 1199), /at most 1199 pixels .*found 40 x 30 = 1200 pixels/);
});

test('a PGM header claiming 99999² is a clear error, not a typed-array failure', async () => {
  const pgm = Buffer.from('P5\n99999 99999\n255\n\x00\x00\x00', 'latin1');
  await assert.rejects(decodeImageBytes(pgm, 'big.pgm'), (err: Error) => err.message === `big.pgm: expected an image of at most ${MAX_PIXELS} pixels (the decode limit, --max-pixels), found 99999 x 99999 = 9999800001 pixels`);
  await assert.rejects(decodeImageBytes(pgm, 'big.pgm', Number.MAX_SAFE_INTEGER), /big\.pgm: truncated PNM data: expected 9999800001 bytes for 99999 x 99999 x 1, found 3/);
  const ascii = Buffer.from('P2\n3000 3000\n255\n1 2 3\n', 'latin1');
  await assert.rejects(decodeImageBytes(ascii, 'a.pgm'), /a\.pgm: truncated PNM data: expected at least 17999999 bytes for 3000 x 3000 x 1 ASCII samples, found 7/);
});

test('a decode error is reported on one line (libvips gives several for a cut TIFF)', async () => {
  const tiff = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).tiff().toBuffer();
  await assert.rejects(decodeImageBytes(tiff.subarray(0, tiff.length >> 1), 'cut.tiff'), (err: Error) => /^cut\.tiff: cannot decode the image: .+; .+/.test(err.message) && !err.message.includes('\n'));
});
