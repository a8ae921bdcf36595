// What the extraction benchmarks run on (bench/extract.bench.ts, bench/macro.ts): a
// ResNet-18-shaped CNN with random weights, written by test/helpers/cnn.ts (throughput depends on
// the shapes, not the weights), and images: LFW from ../shared when present, else Tiny-ImageNet,
// else the repository's fixtures repeated.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Dataset, folderDataset, manifestDataset } from '../src/datasets';
import { type LayerSpec } from '../test/helpers/cnn';
import { REPO } from './common';

const SHARED = path.join(REPO, '..', 'shared', 'data');

/** ResNet-18's shapes: 7x7/2 stem, 3x3/2 max pool, four stages of two basic blocks (64..512), GAP. */
export function resnet18Like(): LayerSpec[] {
  const block = (c: number): LayerSpec => ({ op: 'residual', layers: [{ op: 'conv', out: c, kernel: 3 }, { op: 'conv', out: c, kernel: 3, relu: false }] });
  const layers: LayerSpec[] = [{ op: 'conv', out: 64, kernel: 7, stride: 2, pad: 3 }, { op: 'maxpool', kernel: 3, stride: 2, pad: 1 }, block(64), block(64)];
  for (const c of [128, 256, 512]) layers.push({ op: 'conv', out: c, kernel: 3, stride: 2 }, { op: 'conv', out: c, kernel: 3, relu: false }, block(c));
  layers.push({ op: 'gap' });
  return layers;
}

/** `count` images and where they came from. */
export function benchImages(count: number): { dataset: Dataset; source: string } {
  const lfw = path.join(SHARED, 'lfw', 'images');
  if (fs.existsSync(lfw)) {
    const all = folderDataset(lfw);
    return { dataset: { ...all, items: all.items.slice(0, count) }, source: `LFW (first ${count} images in id order, 250x250 JPEG)` };
  }
  const tiny = path.join(SHARED, 'tiny-imagenet-val', 'labels.tsv');
  if (fs.existsSync(tiny)) {
    const all = manifestDataset(tiny);
    return { dataset: { ...all, items: all.items.slice(0, count) }, source: `Tiny-ImageNet val (first ${count}, 64x64 JPEG)` };
  }
  const fixtures = folderDataset(path.join(REPO, 'test', 'fixtures', 'images'));
  const items = Array.from({ length: count }, (_, i) => ({ ...fixtures.items[i % fixtures.items.length], id: `${i}` }));
  return { dataset: { ...fixtures, items }, source: `the repository's ${fixtures.items.length} fixture images, repeated` };
}
