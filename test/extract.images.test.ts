// Image decoding and preprocessing: PGM/PPM parsing, greyscale and alpha to 3 channels, the three
// resize policies on synthetic images with known content, normalisation vs a float64 reference in
// both layouts and channel orders, and corrupt or missing files rejected with their path.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeImageBytes, imageToTensor, inputSize, normaliseInto, preprocessInto, specKey } from '../src/images/preprocess';
import { decodePnm, isPnm } from '../src/images/pnm';
import type { InputSpec } from '../src/images/types';
import { FileFormatError } from '../src/io/binary';
import { tempDir } from './helpers/io';
import { makeRng } from './helpers/random';

const rng = makeRng('extract.images.test');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'images');
const dir = tempDir();

const spec = (over: Partial<InputSpec> = {}): InputSpec => ({
  size: [8, 8], layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'crop', ...over,
});

/** A PNG of w x h whose pixel (x, y) is f(x, y) = [r, g, b]. */
async function png(w: number, h: number, f: (x: number, y: number) => number[]): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(f(x, y), (y * w + x) * 3);
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

describe('PGM/PPM', () => {
  test('P5 and P2 greyscale, P6 and P3 colour, comments, 16-bit maxval', () => {
    const p5 = Buffer.concat([Buffer.from('P5\n# a comment\n3 2\n255\n'), Buffer.from([0, 10, 20, 30, 40, 255])]);
    assert.ok(isPnm(p5));
    assert.deepEqual(decodePnm(p5, 'a.pgm'), { data: Uint8Array.of(0, 10, 20, 30, 40, 255), width: 3, height: 2, channels: 1 });
    assert.deepEqual(decodePnm(Buffer.from('P2 2 1 15 0 15'), 'b.pgm').data, Uint8Array.of(0, 255));
    const p6 = Buffer.concat([Buffer.from('P6 1 2 255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]);
    assert.deepEqual(decodePnm(p6, 'c.ppm'), { data: Uint8Array.of(1, 2, 3, 4, 5, 6), width: 1, height: 2, channels: 3 });
    assert.deepEqual(decodePnm(Buffer.from('P3\n1 1\n100\n100 50 0\n'), 'd.ppm').data, Uint8Array.of(255, 128, 0));
    const p16 = Buffer.concat([Buffer.from('P5 2 1 65535\n'), Buffer.from([0xff, 0xff, 0x80, 0x00])]);
    assert.deepEqual(decodePnm(p16, 'e.pgm').data, Uint8Array.of(255, 128));
  });

  test('truncated or malformed files are FileFormatErrors naming the file', () => {
    assert.throws(() => decodePnm(Buffer.concat([Buffer.from('P5 4 4 255\n'), Buffer.alloc(10)]), 'f.pgm'), (err: unknown) =>
      err instanceof FileFormatError && err.path === 'f.pgm' && /truncated PNM data: expected 16 bytes for 4 x 4 x 1, found 10/.test(err.message));
    assert.throws(() => decodePnm(Buffer.from('P5 4 x 255\n'), 'g.pgm'), /g\.pgm: PNM header: expected the height as a decimal number at byte 5, found byte 0x78/);
    assert.throws(() => decodePnm(Buffer.from('P5 0 4 255\n'), 'h.pgm'), /expected width, height >= 1 and maxval in \[1, 65535\], found 0 x 4, maxval 255/);
    assert.ok(!isPnm(Buffer.from('P7 1 1')));
  });

  test('an ORL face (92x112 PGM) decodes to 3 equal channels holding the file\'s grey levels', async () => {
    const file = path.join(FIXTURES, 'orl', 's1', '1.pgm');
    const bytes = fs.readFileSync(file);
    const grey = decodePnm(bytes, file);
    const img = await decodeImage(file);
    assert.deepEqual([img.width, img.height], [92, 112]);
    for (let p = 0; p < 92 * 112; p++) {
      assert.equal(img.data[p * 3], grey.data[p]);
      assert.equal(img.data[p * 3 + 1], grey.data[p]);
      assert.equal(img.data[p * 3 + 2], grey.data[p]);
    }
  });
});

describe('decoding', () => {
  test('JPEG fixtures decode to 8-bit RGB at their size', async () => {
    for (const [name, w, h] of [['tiny-val_0.jpg', 64, 64], ['lfw-Aaron_Eckhart_0001.jpg', 250, 250], ['imagenet-n01443537.jpg', 366, 256]] as const) {
      const img = await decodeImage(path.join(FIXTURES, 'photos', name));
      assert.deepEqual([img.width, img.height, img.data.length], [w, h, w * h * 3], name);
    }
  });

  test('a PNG with alpha is flattened onto black: RGB scaled by the alpha', async () => {
    const file = path.join(FIXTURES, 'photos', 'tiny-val_2-rgba.png');
    const img = await decodeImage(file);
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 4);
    for (let p = 0; p < 48 * 40; p++) {
      const a = data[p * 4 + 3] / 255;
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(img.data[p * 3 + c] - data[p * 4 + c] * a) <= 1, `pixel ${p} channel ${c}`);
    }
  });

  test('greyscale PNG and JPEG become 3 equal channels', async () => {
    const raw = Buffer.from(Array.from({ length: 36 }, (_, i) => i * 7));
    for (const format of ['png', 'jpeg'] as const) {
      const bytes = await sharp(raw, { raw: { width: 6, height: 6, channels: 1 } })[format]().toBuffer();
      const img = await decodeImageBytes(bytes, `g.${format}`);
      assert.equal(img.data.length, 108);
      for (let p = 0; p < 36; p++) assert.ok(img.data[p * 3] === img.data[p * 3 + 1] && img.data[p * 3 + 1] === img.data[p * 3 + 2]);
    }
  });

  test('missing, empty, truncated and non-image files are rejected with the path and the reason', async () => {
    const jpg = fs.readFileSync(path.join(FIXTURES, 'photos', 'lfw-Aaron_Eckhart_0001.jpg'));
    const truncated = path.join(dir, 'truncated.jpg');
    fs.writeFileSync(truncated, jpg.subarray(0, jpg.length >> 1));
    const empty = path.join(dir, 'empty.jpg');
    fs.writeFileSync(empty, '');
    const text = path.join(dir, 'text.png');
    fs.writeFileSync(text, 'this is not an image');
    await assert.rejects(decodeImage(path.join(dir, 'absent.jpg')), /absent\.jpg: cannot read the image: ENOENT/);
    await assert.rejects(decodeImage(empty), /empty\.jpg: expected an image, found an empty file/);
    await assert.rejects(decodeImage(truncated), /truncated\.jpg: cannot decode the image: .*premature end/i);
    await assert.rejects(decodeImage(text), /text\.png: cannot decode the image: .*unsupported image format/);
  });
});

describe('resize policies', () => {
  test("'crop' keeps the centre of a wide image; 'stretch' keeps both ends; 'pad' adds black bars", async () => {
    // 30 x 10: red left third, green middle, blue right third.
    const img = await decodeImageBytes(await png(30, 10, (x) => (x < 10 ? [255, 0, 0] : x < 20 ? [0, 255, 0] : [0, 0, 255])), 'bands.png');
    const s = spec({ size: [10, 10] });
    const crop = new Float32Array(300);
    await preprocessInto(img, { ...s, resize: 'crop' }, crop, 0);
    // NCHW planes: the centre crop is all green.
    for (let p = 0; p < 100; p++) assert.deepEqual([crop[p], crop[100 + p], crop[200 + p]].map(Math.round), [0, 1, 0]);
    const stretch = new Float32Array(300);
    await preprocessInto(img, { ...s, resize: 'stretch' }, stretch, 0);
    assert.ok(stretch[0] > 0.9 && stretch[200 + 9] > 0.9, 'red at the left edge, blue at the right edge');
    const pad = new Float32Array(300);
    await preprocessInto(img, { ...s, resize: 'pad' }, pad, 0);
    // Scaled to 10 x 3(.33) and centred: the top and bottom rows are black, the middle row holds the bands.
    for (let x = 0; x < 10; x++) {
      for (const y of [0, 1, 8, 9]) assert.deepEqual([pad[y * 10 + x], pad[100 + y * 10 + x], pad[200 + y * 10 + x]], [0, 0, 0]);
    }
    assert.ok(pad[5 * 10] > 0.5 && pad[200 + 5 * 10 + 9] > 0.5, 'red left, blue right on the middle row');
  });

  test("a centred 'crop' fraction keeps the middle of the image before the resize policy", async () => {
    // 40 x 40: a 20 x 20 white square in the middle of black; crop 0.5 keeps just the square.
    const img = await decodeImageBytes(await png(40, 40, (x, y) => (x >= 10 && x < 30 && y >= 10 && y < 30 ? [255, 255, 255] : [0, 0, 0])), 'square.png');
    const s = spec({ size: [10, 10], scale: 1 / 255 });
    const cropped = new Float32Array(300), whole = new Float32Array(300);
    await preprocessInto(img, { ...s, crop: 0.5 }, cropped, 0);
    await preprocessInto(img, s, whole, 0);
    assert.ok(cropped.every((v) => v > 0.9), 'only the white square remains');
    assert.ok(whole[0] < 0.05 && whole[55] > 0.9, 'without the crop: black border, white centre');
    assert.notEqual(specKey({ ...s, crop: 0.5 }), specKey(s));
  });

  test("'cropCentre' moves the crop window, kept inside the image", async () => {
    // 40 x 40, white rows 20..39: a half-size window centred at 3/4 of the height is all white,
    // one centred at the very bottom is clamped to the same window.
    const img = await decodeImageBytes(await png(40, 40, (_x, y) => (y >= 20 ? [255, 255, 255] : [0, 0, 0])), 'half.png');
    const s = spec({ size: [10, 10], scale: 1 / 255, crop: 0.5 });
    const low = new Float32Array(300), bottom = new Float32Array(300), centred = new Float32Array(300);
    await preprocessInto(img, { ...s, cropCentre: [0.5, 0.75] }, low, 0);
    await preprocessInto(img, { ...s, cropCentre: [0.5, 1] }, bottom, 0);
    await preprocessInto(img, s, centred, 0);
    assert.ok(low.every((v) => v > 0.9), 'the lower half only');
    assert.deepEqual(bottom, low);
    assert.ok(centred[0] < 0.05 && centred[99] > 0.9, 'centred: black top, white bottom');
    assert.notEqual(specKey({ ...s, cropCentre: [0.5, 0.75] }), specKey(s));
  });

  test('an image already at the input size is not resampled', async () => {
    const pixels = Array.from({ length: 64 }, () => [0, 1, 2].map(() => Math.floor(rng() * 256)));
    const img = await decodeImageBytes(await png(8, 8, (x, y) => pixels[y * 8 + x]), 'same.png');
    const out = new Float32Array(192);
    await preprocessInto(img, spec({ scale: 1 }), out, 0);
    for (let p = 0; p < 64; p++) for (let c = 0; c < 3; c++) assert.equal(out[c * 64 + p], pixels[p][c]);
  });
});

describe('normalisation', () => {
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const channels of ['RGB', 'BGR'] as const) {
      test(`${layout} ${channels}: value = (pixel * scale - mean[c]) / std[c] at the image's slot`, () => {
        const h = 5, w = 7, plane = h * w;
        const s = spec({ size: [h, w], layout, channels, scale: 0.5 + rng(), mean: [rng(), rng(), rng()].map((v) => v * 100) as [number, number, number], std: [rng(), rng(), rng()].map((v) => 0.1 + v) as [number, number, number] });
        const pixels = Uint8Array.from({ length: plane * 3 }, () => Math.floor(rng() * 256));
        const out = new Float32Array(2 * inputSize(s)).fill(NaN);
        normaliseInto(pixels, s, out, inputSize(s)); // slot 1 of a batch of 2
        assert.ok(out.subarray(0, inputSize(s)).every(Number.isNaN), 'slot 0 untouched');
        for (let p = 0; p < plane; p++) {
          for (let c = 0; c < 3; c++) {
            const src = channels === 'RGB' ? c : 2 - c;
            const want = (pixels[p * 3 + src] * s.scale - s.mean[c]) / s.std[c];
            const got = out[inputSize(s) + (layout === 'NCHW' ? c * plane + p : p * 3 + c)];
            assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${got} vs ${want}`);
          }
        }
      });
    }
  }

  test('imageToTensor = decode + preprocessInto; specKey tells specs apart', async () => {
    const file = path.join(FIXTURES, 'photos', 'tiny-val_1.jpg');
    const s = spec({ size: [32, 40], resize: 'stretch' });
    const a = await imageToTensor(file, s);
    const b = new Float32Array(inputSize(s));
    await preprocessInto(await decodeImage(file), s, b, 0);
    assert.deepEqual(a, b);
    assert.equal(specKey(s), specKey({ ...s }));
    assert.notEqual(specKey(s), specKey({ ...s, channels: 'BGR' }));
    assert.throws(() => normaliseInto(new Uint8Array(10), s, b, 0), /pixels: expected 3840 bytes \(32 x 40 x 3\), received Uint8Array\(10\)/);
  });
});
