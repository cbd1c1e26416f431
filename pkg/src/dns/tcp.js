// One DNS query over TCP (RFC 1035 §4.2.2, RFC 7766): the wire-format query
// with its two-byte length, one answer back, the connection closed.
//
// Bun's node:dns hands back each character-string of a TXT record as a
// record of its own, so a DKIM key or SPF record longer than 255 octets
// would come back in pieces that cannot be told from separate records. On
// Bun, TXT lookups take this path instead (dns/node.js), asking the same
// servers node:dns would.

import { answerFrom, dnsError, QUERY_TIMEOUT_MS } from './index.js';
import { encodeQuery, TYPES } from './wire.js';

/**
 * Asks each server in turn until one answers.
 * @param {string} name
 * @param {string} type 'TXT', 'MX', 'A' or 'AAAA'
 * @param {{ address: string, port: number }[]} servers
 */
export async function tcpLookup(name, type, servers) {
  const { connect } = await import('node:net');
  const query = encodeQuery(name, TYPES[type]);
  const framed = new Uint8Array(2 + query.length);
  framed[0] = query.length >> 8;
  framed[1] = query.length & 0xff;
  framed.set(query, 2);
  const failures = [];
  for (const server of servers) {
    try {
      return answerFrom(name, type, await exchange(connect, server, framed));
    } catch (error) {
      if (error?.code === 'EDNS') throw error; // an answer that says no
      failures.push(`${server.address}:${server.port}: ${error?.message ?? error}`);
    }
  }
  throw dnsError(name, type, failures.length ? `no DNS server answered over TCP (${failures.join('; ')})` : 'no DNS server is configured');
}

/** Writes the query and resolves with the answer's bytes (at most 65,535: the length prefix bounds it). */
function exchange(connect, server, framed) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.address, port: server.port });
    let received = new Uint8Array(0);
    const finish = (fn, value) => {
      clearTimeout(timer);
      socket.destroy();
      fn(value);
    };
    const timer = setTimeout(() => finish(reject, new Error(`no answer within ${QUERY_TIMEOUT_MS / 1000} s`)), QUERY_TIMEOUT_MS);
    socket.on('connect', () => socket.write(framed));
    socket.on('data', (chunk) => {
      const joined = new Uint8Array(received.length + chunk.length);
      joined.set(received);
      joined.set(chunk, received.length);
      received = joined;
      if (received.length < 2) return;
      const length = (received[0] << 8) | received[1];
      if (received.length >= 2 + length) finish(resolve, received.slice(2, 2 + length));
    });
    socket.on('error', (error) => finish(reject, error));
    socket.on('close', () => finish(reject, new Error('the server closed the connection before answering')));
  });
}
