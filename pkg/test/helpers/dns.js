// A private DNS server for the package's tests: dnsmasq on 127.0.0.1 (a
// free high port) through tests/servers/dns/start.sh, answering only the
// records given (everything else NXDOMAIN), stopped by PID (stop.sh), also
// when the test process exits early. Plus the local DNS-over-HTTPS
// endpoint of tests/servers/dns/doh.mjs in front of it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { atExit } from './at-exit.js';
import { closedPort } from './ports.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DNS = join(ROOT, 'tests', 'servers', 'dns');


/**
 * Starts dnsmasq with `zone`: dnsmasq option lines (see start.sh), e.g.
 * ['mx-host=example.test,mx1.example.test,10', 'host-record=mx1.example.test,127.0.0.2'].
 * @returns {Promise<{ port: number, server: string, stop(): void }>}
 */
export async function startDns(zone) {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-dns-'));
  const conf = join(dir, 'zone.conf');
  const pidFile = join(dir, 'dnsmasq.pid');
  writeFileSync(conf, `${zone.join('\n')}\n`);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync('bash', [join(DNS, 'stop.sh'), pidFile], { stdio: 'ignore', timeout: 10_000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const unregister = atExit(stop);
  // A port taken between closedPort() and dnsmasq's bind: try another.
  for (let attempt = 1; ; attempt++) {
    const port = await closedPort();
    try {
      execFileSync('bash', [join(DNS, 'start.sh'), String(port), conf, pidFile], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
      return {
        port,
        server: `127.0.0.1:${port}`,
        stop() {
          unregister();
          stop();
        },
      };
    } catch (error) {
      if (attempt === 3) {
        unregister();
        stop();
        throw new Error(`dnsmasq did not start (run scripts/setup.sh): ${error.stderr ?? error.message}`);
      }
    }
  }
}

export { startDohServer } from '../../../tests/servers/dns/doh.mjs';
