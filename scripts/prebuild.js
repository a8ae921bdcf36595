#!/usr/bin/env node
// Builds the prebuilt addon that `npm pack` puts in the package (the `prepack` script):
// prebuilds/<platform>-<arch>/embmap.napi.<libc>.node, the name node-gyp-build looks for. It links
// no BLAS (BLIS, OpenBLAS or MKL load at run time), so it loads on Linux of this architecture
// with the build machine's glibc and libstdc++ or newer: built on Debian 12, glibc >= 2.35 and
// GCC 11's libstdc++ (Ubuntu 22.04 and later). A static C++ runtime would raise that to 2.36.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { compile, fail, root } = require('./build-addon');

if (process.platform !== 'linux') fail(`prebuilds are made on Linux; this is ${process.platform}`);
// glibc reports its version to process.report; musl does not.
const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
const built = compile(path.join(root, 'build-prebuild'));
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const target = path.join(dir, `embmap.napi.${libc}.node`);
fs.copyFileSync(built, `${target}.tmp`);
fs.renameSync(`${target}.tmp`, target);
process.stdout.write(`embmap: prebuilt addon ${path.relative(root, target)} (${(fs.statSync(target).size / 1e6).toFixed(1)} MB)\n`);
