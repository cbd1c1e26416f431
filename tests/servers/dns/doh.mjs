// A local DNS-over-HTTPS endpoint (RFC 8484) for wasmtp's tests: an HTTPS
// server (certificate and key given, e.g. signed by the test CA) answering
// POST /dns-query with Content-Type application/dns-message (and GET
// ?dns=base64url) by forwarding the query over UDP to a DNS server on
// loopback (the dnsmasq of start.sh) and returning its answer unchanged.
//
//   import { startDohServer } from '…/tests/servers/dns/doh.mjs';
//   const doh = await startDohServer({ key, cert, upstreamPort: 5353 });
//   doh.url   // https://127.0.0.1:PORT/dns-query
//   await doh.close();
//
// As a command (prints "ready url=…", stops on SIGTERM):
//   node doh.mjs --upstream-port 5353 --cert server.pem --key server.key [--port 0]
// With `plain: true` (--plain) it serves plain HTTP, for clients that
// cannot be given the test CA.

import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { fileURLToPath } from 'node:url';

const UPSTREAM_TIMEOUT_MS = 3000;
const MAX_QUERY = 4096;

/** Sends one DNS message over UDP to 127.0.0.1:port; resolves with the answer. */
function forward(query, port) {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('the upstream DNS server did not answer'));
    }, UPSTREAM_TIMEOUT_MS);
    socket.once('message', (answer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
    socket.send(query, port, '127.0.0.1');
  });
}

async function readBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_QUERY) throw new Error('query too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * @param {{ key?: string, cert?: string, upstreamPort: number, port?: number, plain?: boolean }} options
 * @returns {Promise<{ url: string, port: number, queries: number, close(): Promise<void> }>}
 */
export async function startDohServer({ key, cert, upstreamPort, port = 0, plain = false }) {
  const state = { queries: 0 };
  const handler = async (request, response) => {
    try {
      const url = new URL(request.url, 'http://x');
      if (url.pathname !== '/dns-query') return void response.writeHead(404).end();
      let query;
      if (request.method === 'POST') {
        if (request.headers['content-type'] !== 'application/dns-message') return void response.writeHead(415).end();
        query = await readBody(request);
      } else if (request.method === 'GET' && url.searchParams.has('dns')) {
        query = Buffer.from(url.searchParams.get('dns'), 'base64url');
      } else return void response.writeHead(405).end();
      state.queries += 1;
      const answer = await forward(query, upstreamPort);
      response.writeHead(200, { 'content-type': 'application/dns-message', 'content-length': answer.length });
      response.end(answer);
    } catch (error) {
      response.writeHead(502, { 'content-type': 'text/plain' }).end(String(error?.message ?? error));
    }
  };
  const server = plain ? createHttpServer(handler) : createHttpsServer({ key, cert }, handler);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = server.address().port;
  return {
    url: `${plain ? 'http' : 'https'}://127.0.0.1:${bound}/dns-query`,
    port: bound,
    get queries() {
      return state.queries;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const plain = process.argv.includes('--plain');
  const doh = await startDohServer({
    upstreamPort: Number(arg('upstream-port')),
    port: Number(arg('port') ?? 0),
    plain,
    key: plain ? undefined : readFileSync(arg('key'), 'utf8'),
    cert: plain ? undefined : readFileSync(arg('cert'), 'utf8'),
  });
  console.log(`ready url=${doh.url}`);
  process.once('SIGTERM', () => doh.close().then(() => process.exit(0)));
}
