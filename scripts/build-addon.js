#!/usr/bin/env node
// Builds the native addon from source with cmake-js when no addon loads here: `npm ci` in a
// clone (the `postprepare` script), or by hand where no prebuilt addon fits this machine (the error
// embmap gives then names this script). One line of output; cmake's log only when it fails.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** Whether node-gyp-build finds an addon (a source build or a matching prebuild) for this machine. */
function addonFound() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

/** Runs `cmake-js compile` into `out` with `defines` (-D...); exits with the log's tail on failure. */
function compile(out, defines = []) {
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
    require.resolve('node-addon-api', { paths: [root] });
  } catch {
    fail(`cmake-js and node-addon-api are needed to build from source: cd ${root} && npm install --no-save cmake-js@8 node-addon-api@8`);
  }
  fs.mkdirSync(out, { recursive: true });
  const log = path.join(out, 'build-addon.log');
  const args = [cmakeJs, 'compile', '--directory', root, '--out', out, ...defines.map((d) => `--CD${d}`)];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  fs.writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`);
  if (r.status !== 0) {
    const tail = fs.readFileSync(log, 'utf8').trim().split('\n').slice(-15).join('\n');
    fail(`the source build failed (full log: ${log}):\n${tail}\nIt needs cmake and g++ (apt-get install cmake g++; libblis-dev adds BLIS's typed API).`);
  }
  return path.join(out, 'Release', 'embmap.node');
}

function fail(message) {
  process.stderr.write(`embmap: ${message}\n`);
  process.exit(1);
}

if (require.main === module) {
  if (addonFound()) process.exit(0);
  process.stdout.write('embmap: no prebuilt addon fits this machine; building it from source with cmake-js (about a minute)\n');
  compile(path.join(root, 'build'));
}

module.exports = { compile, fail, root };
