// The alignment cache: one detection pass serves every network and every later run. Entries are
// keyed by the image's content (SHA-256 of its bytes) inside a folder keyed by everything that
// decides the crops (detector graph and thresholds, template, canvas, policy; not the fallback setting), so an
// edited image or a changed setting is computed afresh, never read from a stale entry. An entry
// is a JSON record, plus the aligned crop as PNG when there is one; both are written atomically,
// the crop first, so a record never points at a missing or partial crop. Each shard folder is
// cleared of dead writers' temp files once, before this cache's first write there, instead of once
// per new file name: n entries cost at most 256 folder listings, not 2n.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDeadTemps, writeFileAtomic } from '../io/atomic';
import type { Box } from './detector';
import type { FailureKind } from './align';
import type { Point } from './similarity';

export interface AlignRecord {
  /** Faces the detector found. */
  faces: number;
  /** The face used (absent when none was). */
  face?: { score: number; box: Box; keypoints: Point[]; residual: number };
  /** Why no face was aligned; the crop is then the centred fallback (used only with fallback 'centre'). */
  failure?: { kind: FailureKind; reason: string };
  /** A crop exists (aligned, or the fallback). */
  crop: boolean;
}

export class AlignCache {
  /** The folder for these settings. */
  readonly dir: string;
  /** Shard folders this cache has cleaned (removeDeadTemps). */
  private readonly cleaned = new Set<string>();

  constructor(root: string, settings: unknown) {
    const json = JSON.stringify(settings);
    this.dir = path.join(path.resolve(root), createHash('sha256').update(json).digest('hex').slice(0, 16));
    fs.mkdirSync(this.dir, { recursive: true });
    const about = path.join(this.dir, 'settings.json');
    if (!fs.existsSync(about)) writeFileAtomic(about, [Buffer.from(json + '\n')]);
  }

  private file(hash: string, ext: string): string {
    return path.join(this.dir, hash.slice(0, 2), `${hash}${ext}`);
  }

  cropPath(hash: string): string {
    return this.file(hash, '.png');
  }

  /** The record for an image's content hash; an unreadable record counts as absent (recomputed). */
  get(hash: string): AlignRecord | undefined {
    try {
      const record = JSON.parse(fs.readFileSync(this.file(hash, '.json'), 'utf8')) as AlignRecord;
      return record.crop && !fs.existsSync(this.cropPath(hash)) ? undefined : record;
    } catch {
      return undefined;
    }
  }

  put(hash: string, record: AlignRecord, png?: Uint8Array): void {
    const shard = path.join(this.dir, hash.slice(0, 2));
    if (!this.cleaned.has(shard)) {
      fs.mkdirSync(shard, { recursive: true });
      removeDeadTemps(shard);
      this.cleaned.add(shard);
    }
    if (png) writeFileAtomic(this.cropPath(hash), [png], { folderCleaned: true });
    writeFileAtomic(this.file(hash, '.json'), [Buffer.from(JSON.stringify(record))], { folderCleaned: true });
  }
}
