// The error codes index.d.ts declares are exactly the ones the code can
// produce: the engine's (ErrorCode::as_str in src/error.rs) and those the
// package's own JS sets (`code: 'E…'` in pkg/src; the CLI in pkg/bin has
// only its own file errors, and prints them). A code thrown but not
// typed, or typed but never produced, fails here.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const repo = join(pkg, '..');

/** Codes set on errors that never leave the package: a store tells the
 *  outbox a message is gone (ENOMESSAGE), and the outbox records EINTERNAL. */
const INTERNAL = new Set(['ENOMESSAGE']);

function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

/** `'A' | 'B'` members of a union written after `marker`, up to `end`. */
function union(text, marker, end) {
  const start = text.indexOf(marker);
  assert.ok(start >= 0, `index.d.ts has ${marker}`);
  const body = text.slice(start + marker.length, text.indexOf(end, start + marker.length));
  return new Set([...body.matchAll(/'([A-Z0-9_]+)'/g)].map((m) => m[1]));
}

const engineCodes = new Set(
  [...readFileSync(join(repo, 'src/error.rs'), 'utf8').matchAll(/ErrorCode::\w+ => "(E[A-Z0-9_]+)"/g)].map((m) => m[1]),
);

// `code: 'EBUSY'`, and both branches of `code: cond ? 'EBUSY' : 'EINPUT'`.
const jsCodes = new Set();
for (const file of jsFiles(join(pkg, 'src'))) {
  for (const [, value] of readFileSync(file, 'utf8').matchAll(/\bcode: ([^,}\n]+)/g)) {
    for (const [, code] of value.matchAll(/'(E[A-Z0-9_]+)'/g)) if (!INTERNAL.has(code)) jsCodes.add(code);
  }
}

const types = readFileSync(join(pkg, 'index.d.ts'), 'utf8');
const errorCode = union(types, 'export type ErrorCode =', ';');
// The outbox's records add codes of their own to ErrorCode.
const outboxCode = union(types, 'code: ErrorCode |', ';');

test('the engine produces a code for every ErrorCode variant, and index.d.ts declares them', () => {
  assert.ok(engineCodes.size >= 17, `read ${[...engineCodes]} from src/error.rs`);
  for (const code of engineCodes) assert.ok(errorCode.has(code), `${code} (engine) is missing from ErrorCode`);
});

test('every code the package sets is declared, and every declared code is produced', () => {
  const declared = new Set([...errorCode, ...outboxCode]);
  for (const code of jsCodes) assert.ok(declared.has(code), `${code} is set in pkg/src but not declared in index.d.ts`);
  const produced = new Set([...engineCodes, ...jsCodes]);
  for (const code of declared) assert.ok(produced.has(code), `${code} is declared in index.d.ts but nothing produces it`);
});
