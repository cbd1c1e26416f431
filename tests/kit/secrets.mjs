// The test credentials and the detector for them, without node:test (also
// used by scripts/test-faults.sh to scan the whole run's output).

export const USER = 'ann@example.com';
export const PASSWORD = 'Pw-7f3a-n0t-4-r34l-s3cr3t';
export const TOKEN = 'ya29.Tk-9c41e-fake-oauth-token';
/** What a token provider hands out after TOKEN was refused, and what it refreshes with. */
export const FRESH_TOKEN = 'ya29.Fr-77d0a-fake-fresh-token';
export const REFRESH_TOKEN = '1//Rf-0b3c9-fake-refresh-token';
export const CLIENT_SECRET = 'Cs-5e81f-fake-client-secret';

const SECRETS = new Map([
  [PASSWORD, 'password'],
  [TOKEN, 'token'],
  [FRESH_TOKEN, 'fresh token'],
  [REFRESH_TOKEN, 'refresh token'],
  [CLIENT_SECRET, 'client secret'],
]);

/** How a secret appears in `text` (plainly, inside a base64 token or form-encoded), masked; [] if it does not. */
export function findSecrets(text) {
  const found = [];
  for (const [secret, name] of SECRETS) {
    if (text.includes(secret) || text.includes(encodeURIComponent(secret))) found.push(`the ${name} in clear`);
  }
  for (const match of text.matchAll(/[A-Za-z0-9+/_-]{12,}={0,2}/g)) {
    const token = match[0];
    for (const decoded of [Buffer.from(token, 'base64').toString('latin1'), Buffer.from(token, 'base64url').toString('latin1')]) {
      for (const [secret, name] of SECRETS) {
        if (decoded.includes(secret)) found.push(`the ${name} base64-encoded (${token.slice(0, 6)}...)`);
      }
    }
  }
  return [...new Set(found)];
}

// `node tests/kit/secrets.mjs FILE...`: exits 1 (naming where, never the secret) if a file contains a secret.
const { pathToFileURL } = await import('node:url');
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { readFileSync } = await import('node:fs');
  let leaks = 0;
  for (const file of process.argv.slice(2)) {
    const text = readFileSync(file, 'latin1');
    text.split('\n').forEach((line, i) => {
      for (const how of findSecrets(line)) {
        leaks += 1;
        console.error(`${file}:${i + 1}: ${how}`);
      }
    });
  }
  if (leaks > 0) {
    console.error(`a test secret appeared ${leaks} time(s) in the output`);
    process.exit(1);
  }
}
