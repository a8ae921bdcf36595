// Paths compared and confined by where they really lead, after symlinks.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The file's real path; for a file not there yet, its nearest existing folder's real path joined with the rest. */
export function realPathOf(file: string): string {
  const abs = path.resolve(file);
  for (let dir = abs; ; dir = path.dirname(dir)) {
    try {
      return path.join(fs.realpathSync(dir), path.relative(dir, abs));
    } catch {
      if (dir === path.dirname(dir)) return abs;
    }
  }
}

/**
 * `relative` resolved against `dir`, or undefined when it leads outside `dir` (by `..`, an
 * absolute path, or a symlink on the way): a file named by a downloaded package stays inside it.
 */
export function resolveInside(dir: string, relative: string): string | undefined {
  const root = realPathOf(dir);
  const real = realPathOf(path.resolve(dir, relative));
  const rel = path.relative(root, real);
  const outside = rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  return outside ? undefined : real;
}
