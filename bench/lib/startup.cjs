// Import + instantiate time of require('wasmtp') in a fresh Node process,
// from a CommonJS application (no ES module loaded before it); prints one
// JSON line like lib/startup.mjs.
//   node lib/startup.cjs wasmtp|nodemailer
// wasmtp: the file required is the "require" condition of
// pkg/package.json's "." export (dist/index.cjs), so the benchmark measures
// what ships; then `await ready()`. nodemailer: require it and create a
// transport.
const { join } = require('node:path');

const pkgDir = join(__dirname, '..', '..', 'pkg');
const entry = join(pkgDir, require(join(pkgDir, 'package.json')).exports['.'].require);

const report = (t0, t1) => {
  const t2 = performance.now();
  process.stdout.write(JSON.stringify({ importMs: t1 - t0, instantiateMs: t2 - t1, totalMs: t2 - t0 }) + '\n');
};

const t0 = performance.now();
if (process.argv[2] === 'nodemailer') {
  const nodemailer = require('nodemailer');
  const t1 = performance.now();
  nodemailer.createTransport({ host: '127.0.0.1', port: 25 });
  report(t0, t1);
} else {
  const { ready } = require(entry);
  const t1 = performance.now();
  ready().then(() => report(t0, t1));
}
