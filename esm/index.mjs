// The ES module entry: the CommonJS build's exports, so that `import` and `require` share one
// instance (one native addon, one engine cache).
export * from '../dist/src/index.js';
