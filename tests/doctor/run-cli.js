// `wasmtp` (pkg/bin/wasmtp.js) as a child process, for the CLI tests.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../pkg/bin/wasmtp.js', import.meta.url));

/**
 * Runs the CLI (killed after 30 s); resolves { code, stdout, stderr }.
 * WASMTP_PASSWORD is passed on only when `env` sets it.
 */
export function cli(args, env = {}) {
  return new Promise((resolve) => {
    const childEnv = { ...process.env, ...env };
    if (!('WASMTP_PASSWORD' in env)) delete childEnv.WASMTP_PASSWORD;
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
