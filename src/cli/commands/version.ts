import { VERSION } from '../../version';
import type { Command } from '../command';

export const versionCommand: Command = {
  name: 'version',
  summary: "print embmap's version (also embmap --version, embmap -V)",
  flags: { json: { type: 'boolean', description: 'print JSON: embmap and Node.js versions' } },
  run(args) {
    process.stdout.write(args.json ? JSON.stringify({ embmap: VERSION, node: process.versions.node, napi: process.versions.napi }, null, 2) + '\n' : `embmap ${VERSION}\n`);
  },
};
