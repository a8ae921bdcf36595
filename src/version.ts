// The package version, read once from package.json (recorded in every file embmap writes).
import * as fs from 'node:fs';
import * as path from 'node:path';

export const VERSION: string = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
).version;
