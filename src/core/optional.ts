// Packages that only some features need (optional peer dependencies: ONNX Runtime, sharp, fastify, BullMQ,
// the ONNX schema, FlatBuffers): loaded on first use, so that the map API never loads them, and a
// missing one is an error naming the package to install and the feature that needs it.
import * as fs from 'node:fs';
import * as path from 'node:path';

const cache = new Map<string, unknown>();

/** `require(name)` once; when it is not installed, an Error saying what to install for `feature`. */
export function optional<T>(name: string, feature: string): T {
  if (cache.has(name)) return cache.get(name) as T;
  let loaded: T;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(name) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Only the package itself missing: a broken install of it (a missing native library) says so itself.
    if (e.code !== 'MODULE_NOT_FOUND' || !e.message.includes(`'${name}'`)) throw err;
    throw new Error(`embmap: ${feature} needs the package ${name}, which is not installed; install it with: npm install ${name}@${peerRange(name)}`);
  }
  cache.set(name, loaded);
  return loaded;
}

/** The version range embmap's package.json asks for (peerDependencies), '*' if none. */
function peerRange(name: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    peerDependencies?: Record<string, string>;
  };
  return pkg.peerDependencies?.[name] ?? '*';
}
