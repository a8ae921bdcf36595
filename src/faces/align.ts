// From detected faces to the similarity that puts one of them on the template: which face (the
// most central of the large ones, by default), and when not to trust it (too small, landmarks that
// no similarity brings near the template: extreme pose or a false detection).
import { assertNumber, assertOneOf } from '../core/validate';
import type { Face } from './detector';
import { type Point, type Similarity, fitSimilarity, residualRms } from './similarity';

/** Side of the aligned crop, in pixels. */
export const CANVAS = 224;

/**
 * ArcFace's 5-point template for 112x112 crops (insightface), placed at the centre of the 224x224
 * canvas: the ArcFace crop is its middle half (a network's card crop 0.5), and the canvas keeps
 * the whole head for networks trained on looser crops. BlazeFace has no mouth corners, so its mouth
 * centre goes to the midpoint of the template's.
 */
export const TEMPLATE: readonly Point[] = [
  [38.2946 + 56, 51.6963 + 56], // eye on the image's left
  [73.5318 + 56, 51.5014 + 56], // eye on the image's right
  [56.0252 + 56, 71.7366 + 56], // nose tip
  [(41.5493 + 70.7299) / 2 + 56, (92.3655 + 92.2041) / 2 + 56], // mouth centre
];

export const PICKS = ['central', 'largest', 'confident'] as const;
export type Pick = (typeof PICKS)[number];

export interface AlignPolicy {
  /** Which face when there are several: 'central' (default) the nearest the image centre among those at least half as large as the largest, 'largest', or 'confident' (best score). */
  pick?: Pick;
  /** Smallest face kept, box width in image pixels (default 32). */
  minFace?: number;
  /** Largest landmark residual after alignment, as a fraction of the template's eye distance (default 0.35; LFW's frontal faces: median 0.06). */
  maxResidual?: number;
}

export function checkPolicy(name: string, p: AlignPolicy): Required<AlignPolicy> {
  const policy = { pick: p.pick ?? 'central', minFace: p.minFace ?? 32, maxResidual: p.maxResidual ?? 0.35 };
  assertOneOf(`${name}.pick`, policy.pick, PICKS);
  assertNumber(`${name}.minFace`, policy.minFace, 1);
  assertNumber(`${name}.maxResidual`, policy.maxResidual, 0);
  return policy;
}

/** Failure kinds, counted in summaries (in this order). */
export const FAILURE_KINDS = ['unreadable', 'no face', 'face too small', 'extreme pose'] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export type Alignment =
  | { ok: true; transform: Similarity; face: Face; faces: number; residual: number }
  | { ok: false; kind: FailureKind; reason: string; faces: number };

const EYE_DISTANCE = Math.hypot(TEMPLATE[1][0] - TEMPLATE[0][0], TEMPLATE[1][1] - TEMPLATE[0][1]);

/** The transform from the image to the canvas for the chosen face, or why there is none. */
export function alignFace(faces: Face[], width: number, height: number, policy: Required<AlignPolicy>): Alignment {
  if (faces.length === 0) return { ok: false, kind: 'no face', reason: 'no face found', faces: 0 };
  const face = pickFace(faces, width, height, policy.pick);
  if (face.box.width < policy.minFace) {
    return { ok: false, kind: 'face too small', reason: `face too small: ${face.box.width.toFixed(0)} px wide (minimum ${policy.minFace})`, faces: faces.length };
  }
  const points = face.keypoints.slice(0, TEMPLATE.length);
  const transform = fitSimilarity(points, TEMPLATE as Point[]);
  const residual = residualRms(transform, points, TEMPLATE as Point[]) / EYE_DISTANCE;
  if (residual > policy.maxResidual) {
    return { ok: false, kind: 'extreme pose', reason: `extreme pose: landmarks off the template by ${residual.toFixed(2)} eye distances (maximum ${policy.maxResidual})`, faces: faces.length };
  }
  return { ok: true, transform, face, faces: faces.length, residual };
}

function pickFace(faces: Face[], width: number, height: number, pick: Pick): Face {
  const area = (f: Face) => f.box.width * f.box.height;
  if (pick === 'confident') return faces.reduce((a, b) => (b.score > a.score ? b : a));
  const largest = faces.reduce((a, b) => (area(b) > area(a) ? b : a));
  if (pick === 'largest') return largest;
  const off = (f: Face) => Math.hypot(f.box.x + f.box.width / 2 - width / 2, f.box.y + f.box.height / 2 - height / 2);
  return faces.filter((f) => area(f) >= area(largest) / 2).reduce((a, b) => (off(b) < off(a) ? b : a));
}
