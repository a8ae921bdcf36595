// Similarity transforms (rotation, uniform scale, translation) between 2-D point sets: the
// least-squares fit that aligns detected landmarks to a template. Umeyama's (1991) solution
// without reflection reduces in 2-D to a complex regression z' = w z + t (w = scale * e^{i angle}),
// solved here in closed form on centred points.
import { fail } from '../core/validate';

export type Point = [number, number];

/** x' = a x - b y + tx, y' = b x + a y + ty: scale hypot(a, b), rotation atan2(b, a). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

function checkPoints(name: string, points: unknown, count?: number): asserts points is Point[] {
  const ok = Array.isArray(points) && points.every((p) => Array.isArray(p) && p.length === 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]));
  if (!ok) fail(TypeError, name, 'an array of [x, y] pairs of finite numbers', points);
  if (count !== undefined && points.length !== count) fail(RangeError, name, `${count} points to match src`, points);
}

/** The similarity T minimising sum |T(src_i) - dst_i|^2 (at least two distinct source points). */
export function fitSimilarity(src: Point[], dst: Point[]): Similarity {
  checkPoints('src', src);
  checkPoints('dst', dst, src.length);
  const n = src.length;
  let mx = 0, my = 0, nx = 0, ny = 0;
  for (let i = 0; i < n; i++) {
    mx += src[i][0] / n; my += src[i][1] / n;
    nx += dst[i][0] / n; ny += dst[i][1] / n;
  }
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const x = src[i][0] - mx, y = src[i][1] - my, u = dst[i][0] - nx, v = dst[i][1] - ny;
    dot += x * u + y * v;
    cross += x * v - y * u;
    norm += x * x + y * y;
  }
  if (!(norm > 0)) fail(RangeError, 'src', 'at least two distinct points', src);
  const a = dot / norm, b = cross / norm;
  return { a, b, tx: nx - (a * mx - b * my), ty: ny - (b * mx + a * my) };
}

export function applySimilarity(t: Similarity, p: Point): Point {
  return [t.a * p[0] - t.b * p[1] + t.tx, t.b * p[0] + t.a * p[1] + t.ty];
}

export function invertSimilarity(t: Similarity): Similarity {
  const s2 = t.a * t.a + t.b * t.b;
  if (!(s2 > 0)) fail(RangeError, 't', 'an invertible similarity (scale > 0)', t);
  const a = t.a / s2, b = -t.b / s2;
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

/** Root-mean-square distance between T(src_i) and dst_i. */
export function residualRms(t: Similarity, src: Point[], dst: Point[]): number {
  let sum = 0;
  src.forEach((p, i) => {
    const [x, y] = applySimilarity(t, p);
    sum += (x - dst[i][0]) ** 2 + (y - dst[i][1]) ** 2;
  });
  return Math.sqrt(sum / src.length);
}
