// Import + instantiate time in a fresh Node process; prints one JSON line.
//   node lib/startup.mjs wasmtp|nodemailer
// wasmtp: import the package entry (what `import 'wasmtp'` loads), then
// `await ready()`, which reads, compiles and instantiates the core engine.
// nodemailer: import it and create a transport (it has no separate
// initialisation).
import { wasmtpEntry } from './entry.mjs';

const lib = process.argv[2];
const t0 = performance.now();
let t1;
if (lib === 'wasmtp') {
  const { ready } = await import(wasmtpEntry);
  t1 = performance.now();
  await ready();
} else {
  const { default: nodemailer } = await import('nodemailer');
  t1 = performance.now();
  nodemailer.createTransport({ host: '127.0.0.1', port: 25 });
}
const t2 = performance.now();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, instantiateMs: t2 - t1, totalMs: t2 - t0 }) + '\n');
