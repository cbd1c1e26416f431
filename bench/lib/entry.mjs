// The module an application gets from `import 'wasmtp'` on Node: the "."
// export of pkg/package.json (the bundled dist/index.js), so the benchmark
// measures what ships rather than the source files.
import { readFileSync } from 'node:fs';

const pkgDir = new URL('../../pkg/', import.meta.url);
const { exports } = JSON.parse(readFileSync(new URL('package.json', pkgDir), 'utf8'));

export const wasmtpEntry = new URL(exports['.'].default, pkgDir).href;
