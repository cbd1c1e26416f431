// A stub resolver on the wire (RFC 1035 §4.2, RFC 7766): one question to
// each server in turn by UDP, again over TCP when the UDP answer comes back
// truncated. Node's and Bun's node:dns give no TTL for MX and TXT records
// (and Bun's hands back each character-string of a TXT record as a record
// of its own), so MX and TXT lookups take this path on both: the answers
// are cached for their own TTL, and a long DKIM key stays whole.

import { answerFrom, dnsError, QUERY_TIMEOUT_MS } from './index.js';
import { encodeQuery, TYPES } from './wire.js';

/** Each server gets this long before the next one is asked. */
const PER_SERVER_MS = QUERY_TIMEOUT_MS / 2;

/**
 * @param {string} name
 * @param {string} type 'MX', 'TXT', 'A' or 'AAAA'
 * @param {{ address: string, port: number }[]} servers
 * @returns {Promise<{ values: any[], ttl: number }>}
 */
export async function wireLookup(name, type, servers) {
  const [{ createSocket }, { connect }] = await Promise.all([import('node:dgram'), import('node:net')]);
  const failures = [];
  for (const server of servers) {
    // A fresh random ID per question (and the system's random source port):
    // an answer that does not carry it is not ours.
    const query = encodeQuery(name, TYPES[type]);
    const id = (Math.random() * 0x10000) | 0;
    query[0] = id >> 8;
    query[1] = id & 0xff;
    try {
      let answer = await overUdp(createSocket, server, query, id);
      if (answer[2] & 0x02) answer = await overTcp(connect, server, query, id); // TC: truncated
      return answerFrom(name, type, answer);
    } catch (error) {
      if (error?.code === 'EDNS') throw error; // an answer that says no (SERVFAIL, REFUSED, unreadable)
      failures.push(`${server.address}:${server.port}: ${error?.message ?? error}`);
    }
  }
  throw dnsError(name, type, failures.length ? `no DNS server answered (${failures.join('; ')})` : 'no DNS server is configured');
}

const idOf = (bytes) => (bytes.length >= 12 && bytes[2] & 0x80 ? (bytes[0] << 8) | bytes[1] : -1);

/** One datagram out; the first response with our ID back. */
function overUdp(createSocket, server, query, id) {
  return new Promise((resolve, reject) => {
    const socket = createSocket(server.address.includes(':') ? 'udp6' : 'udp4');
    const finish = (fn, value) => {
      clearTimeout(timer);
      socket.close();
      fn(value);
    };
    const timer = setTimeout(() => finish(reject, new Error(`no answer within ${PER_SERVER_MS / 1000} s`)), PER_SERVER_MS);
    socket.on('message', (message) => {
      if (idOf(message) === id) finish(resolve, new Uint8Array(message));
    });
    socket.on('error', (error) => finish(reject, error));
    socket.send(query, server.port, server.address, (error) => error && finish(reject, error));
  });
}

/** The query with its two-byte length on a fresh connection; the answer back (at most 65,535 bytes). */
function overTcp(connect, server, query, id) {
  const framed = new Uint8Array(2 + query.length);
  framed[0] = query.length >> 8;
  framed[1] = query.length & 0xff;
  framed.set(query, 2);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.address, port: server.port });
    let received = new Uint8Array(0);
    const finish = (fn, value) => {
      clearTimeout(timer);
      socket.destroy();
      fn(value);
    };
    const timer = setTimeout(() => finish(reject, new Error(`no answer over TCP within ${PER_SERVER_MS / 1000} s`)), PER_SERVER_MS);
    socket.on('connect', () => socket.write(framed));
    socket.on('data', (chunk) => {
      const joined = new Uint8Array(received.length + chunk.length);
      joined.set(received);
      joined.set(chunk, received.length);
      received = joined;
      if (received.length < 2) return;
      const length = (received[0] << 8) | received[1];
      if (received.length < 2 + length) return;
      const answer = received.slice(2, 2 + length);
      if (idOf(answer) === id) finish(resolve, answer);
      else finish(reject, new Error('the TCP answer does not carry the question\'s ID'));
    });
    socket.on('error', (error) => finish(reject, error));
    socket.on('close', () => finish(reject, new Error('the server closed the connection before answering')));
  });
}
