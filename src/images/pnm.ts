// Netpbm greyscale and colour images (PGM P2/P5, PPM P3/P6), which sharp's prebuilt libvips does
// not read: ORL faces and many older face sets are PGM. Decoded to 8-bit samples for sharp's raw input.
import { FileFormatError } from '../io/binary';

export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/** True when the bytes start like a PGM/PPM file ("P2", "P3", "P5" or "P6" then whitespace). */
export function isPnm(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x50 && [0x32, 0x33, 0x35, 0x36].includes(bytes[1]) && isSpace(bytes[2]);
}

/** Decodes a PGM/PPM file; one claiming more than `maxPixels` pixels is refused before any allocation. */
export function decodePnm(bytes: Uint8Array, file: string, maxPixels = Infinity): RawImage {
  if (!isPnm(bytes)) throw new FileFormatError(file, 'expected a PGM/PPM file starting with P2, P3, P5 or P6');
  const kind = bytes[1] - 0x30;
  const channels = kind === 2 || kind === 5 ? 1 : 3;
  const ascii = kind === 2 || kind === 3;
  let pos = 2;
  // Header: width, height, maxval as decimal tokens, '#' comments to end of line.
  const token = (what: string): number => {
    for (;;) {
      while (pos < bytes.length && isSpace(bytes[pos])) pos++;
      if (bytes[pos] !== 0x23) break;
      while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
    }
    const start = pos;
    while (pos < bytes.length && bytes[pos] >= 0x30 && bytes[pos] <= 0x39) pos++;
    if (pos === start) throw new FileFormatError(file, `PNM header: expected ${what} as a decimal number at byte ${start}, found ${pos < bytes.length ? `byte 0x${bytes[pos].toString(16)}` : 'end of file'}`);
    return Number(Buffer.from(bytes.subarray(start, pos)).toString('latin1'));
  };
  const width = token('the width');
  const height = token('the height');
  const maxval = token('maxval');
  if (width < 1 || height < 1 || maxval < 1 || maxval > 65535) {
    throw new FileFormatError(file, `PNM header: expected width, height >= 1 and maxval in [1, 65535], found ${width} x ${height}, maxval ${maxval}`);
  }
  if (width * height > maxPixels) {
    throw new FileFormatError(file, `expected an image of at most ${maxPixels} pixels (the decode limit, --max-pixels), found ${width} x ${height} = ${width * height} pixels`);
  }
  const count = width * height * channels;
  const to8 = (v: number) => (maxval === 255 ? v : Math.round((v * 255) / maxval));
  // The sizes are checked against the file before the pixels are allocated.
  if (ascii) {
    // Each sample takes a digit and a separator.
    if (bytes.length - pos < 2 * count - 1) {
      throw new FileFormatError(file, `truncated PNM data: expected at least ${2 * count - 1} bytes for ${width} x ${height} x ${channels} ASCII samples, found ${bytes.length - pos}`);
    }
    const data = new Uint8Array(count);
    for (let i = 0; i < count; i++) data[i] = Math.min(255, to8(token(`sample ${i + 1} of ${count}`)));
    return { data, width, height, channels };
  }
  pos++; // exactly one whitespace byte separates maxval from the samples
  const bytesPer = maxval < 256 ? 1 : 2;
  const available = bytes.length - pos;
  if (available < count * bytesPer) {
    throw new FileFormatError(file, `truncated PNM data: expected ${count * bytesPer} bytes for ${width} x ${height} x ${channels}, found ${available}`);
  }
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = bytesPer === 1 ? bytes[pos + i] : (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1];
    data[i] = Math.min(255, to8(v));
  }
  return { data, width, height, channels };
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
}
