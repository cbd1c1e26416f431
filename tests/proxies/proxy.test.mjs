// Proxies on Node.js: real SOCKS5 (danted) and HTTP CONNECT (tinyproxy)
// proxies on 127.0.0.1, an smtp-server behind them. Every mode of TLS
// (none, STARTTLS, implicit, TLS inside the engine) through each proxy, the
// server seeing every connection come from the proxy's own address; and
// each way a proxy fails, with its EPROXY error.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../../pkg/src/index.js';
import { closedPort, startServer } from '../../pkg/test/helpers/server.js';
import { certificates } from './certs.mjs';
import {
  DANTE_ADDRESS, HTTP_PASS, HTTP_USER, SOCKS_PASS, SOCKS_USER, TINYPROXY_ADDRESS, startDante, startTinyproxy,
} from './proxies.mjs';

const { ca, key, cert } = certificates();
const envelope = { from: 'ann@example.com', to: ['bob@example.org'] };
const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: proxied\r\n\r\nthrough the proxy\r\n';
const socksCredentials = `${encodeURIComponent(SOCKS_USER)}:${encodeURIComponent(SOCKS_PASS)}`;
const httpCredentials = `${encodeURIComponent(HTTP_USER)}:${encodeURIComponent(HTTP_PASS)}`;

const MODES = { none: 'none', starttls: 'starttls', implicit: 'tls' };
const servers = {};
const peers = [];
let dante;
let danteAuth;
let tinyproxy;
let refusedPort;

before(async () => {
  for (const mode of Object.keys(MODES)) {
    servers[mode] = await startServer({
      tls: mode,
      key,
      cert,
      onConnect(session, callback) {
        peers.push(session.remoteAddress);
        callback();
      },
    });
  }
  // A port no rule allows: the proxies must refuse it.
  refusedPort = await closedPort();
  const ports = Object.values(servers).map((s) => s.port);
  dante = await startDante({ ports });
  danteAuth = await startDante({ ports, auth: true });
  tinyproxy = await startTinyproxy({ ports });
});

after(async () => {
  await Promise.all([dante, danteAuth, tinyproxy].map((p) => p?.stop()));
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

const proxies = () => ({
  'SOCKS5 (danted)': { url: `socks5://127.0.0.1:${dante.port}`, address: DANTE_ADDRESS },
  'SOCKS5 with user/password (danted)': { url: `socks5://${socksCredentials}@127.0.0.1:${danteAuth.port}`, address: DANTE_ADDRESS },
  'HTTP CONNECT with BasicAuth (tinyproxy)': { url: `http://${httpCredentials}@127.0.0.1:${tinyproxy.port}`, address: TINYPROXY_ADDRESS },
});

async function sendThrough(proxy, mode, engine) {
  const client = createClient({ host: 'localhost', port: servers[mode].port, security: MODES[mode], tls: { ca, engine }, proxy });
  try {
    return await client.send({ raw, envelope });
  } finally {
    await client.close();
  }
}

for (const name of ['SOCKS5 (danted)', 'SOCKS5 with user/password (danted)', 'HTTP CONNECT with BasicAuth (tinyproxy)']) {
  describe(`through ${name}`, () => {
    for (const mode of Object.keys(MODES)) {
      for (const engine of ['native', 'wasm']) {
        test(`${mode === 'none' ? 'plaintext' : mode} with ${engine === 'wasm' ? 'TLS inside the engine' : "the runtime's TLS"}: sent, and the server saw only the proxy`, async () => {
          const { url, address } = proxies()[name];
          peers.length = 0;
          const before = servers[mode].messages.length;
          const result = await sendThrough(url, mode, engine);
          assert.deepEqual(result.accepted, ['bob@example.org']);
          assert.equal(servers[mode].messages.length, before + 1);
          assert.equal(servers[mode].messages.at(-1).raw.toString(), raw);
          // Every connection (the port probe of TLS inside the engine too) came through the proxy.
          assert.ok(peers.length >= 1);
          assert.deepEqual(new Set(peers), new Set([address]), `connections came from ${peers}`);
        });
      }
    }
  });
}

/** The EPROXY error of a send through `proxy` to the STARTTLS server (or `port`). */
async function proxyFailure(proxy, port = servers.starttls.port) {
  const client = createClient({ host: 'localhost', port, security: 'starttls', tls: { ca }, proxy });
  const before = servers.starttls.messages.length;
  try {
    await client.send({ raw, envelope });
    assert.fail('sent, although the proxy should have failed');
  } catch (error) {
    assert.ok(error instanceof SmtpError, String(error));
    assert.equal(error.code, 'EPROXY', error.message);
    assert.equal(error.phase, 'proxy');
    assert.equal(error.deliveryState, 'not-sent');
    assert.ok(error.hint);
    assert.equal(servers.starttls.messages.length, before);
    return error;
  } finally {
    await client.close();
  }
}

describe('proxy failures', () => {
  test('SOCKS5: wrong password', async () => {
    const error = await proxyFailure(`socks5://${SOCKS_USER}:wrong@127.0.0.1:${danteAuth.port}`);
    assert.match(error.detail, /refused the user name and password/);
    assert.ok(!error.message.includes('wrong'), 'the password is not in the error');
  });

  test('SOCKS5: no credentials where the proxy needs them', async () => {
    const error = await proxyFailure(`socks5://127.0.0.1:${danteAuth.port}`);
    assert.match(error.detail, /none of the offered authentication methods/);
    assert.match(error.hint, /needs a user and password/);
  });

  test('SOCKS5: the proxy refuses the target', async () => {
    const error = await proxyFailure(`socks5://127.0.0.1:${dante.port}`, refusedPort);
    assert.match(error.detail, new RegExp(`refused to connect to localhost:${refusedPort}`));
  });

  test('HTTP CONNECT: wrong password', async () => {
    const error = await proxyFailure(`http://${HTTP_USER}:wrong@127.0.0.1:${tinyproxy.port}`);
    assert.match(error.detail, /refused the credentials/);
    assert.ok(!error.message.includes('wrong'), 'the password is not in the error');
  });

  test('HTTP CONNECT: no credentials where the proxy needs them', async () => {
    const error = await proxyFailure(`http://127.0.0.1:${tinyproxy.port}`);
    assert.match(error.detail, /asks for credentials/);
  });

  test('HTTP CONNECT: the proxy refuses the target', async () => {
    const error = await proxyFailure(`http://${httpCredentials}@127.0.0.1:${tinyproxy.port}`, refusedPort);
    assert.match(error.detail, new RegExp(`refused to connect to localhost:${refusedPort}`));
  });

  test('a proxy that cannot be reached', async () => {
    const error = await proxyFailure(`socks5://127.0.0.1:${refusedPort}`);
    assert.match(error.detail, /cannot be reached/);
    assert.equal(error.retryable, true);
  });

  test('a proxy that closes before the tunnel is open', async () => {
    const { createServer } = await import('node:net');
    const closer = createServer((socket) => socket.end());
    await new Promise((resolve) => closer.listen(0, '127.0.0.1', resolve));
    try {
      const error = await proxyFailure(`http://127.0.0.1:${closer.address().port}`);
      assert.match(error.detail, /closed the connection before the tunnel was open/);
    } finally {
      closer.close();
    }
  });

  test('a proxy that accepts and never answers: EPROXY within the connect time-out, and its socket is closed', async () => {
    const { createServer } = await import('node:net');
    let closed;
    const sockets = new Promise((resolve) => (closed = resolve));
    const silent = createServer((socket) => {
      socket.on('error', () => {});
      socket.on('close', closed);
      socket.resume(); // reads, so that it sees the client's FIN
    });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const client = createClient({ host: 'localhost', port: servers.none.port, security: 'none', proxy: `socks5://127.0.0.1:${silent.address().port}`, timeouts: { connect: 800 } });
    try {
      await assert.rejects(client.send({ raw, envelope }), (error) => {
        assert.ok(['EPROXY', 'ETIMEDOUT'].includes(error.code), error.message);
        assert.match(error.message, /proxy socks5:\/\/127\.0\.0\.1:\d+/);
        return true;
      });
      await sockets; // the proxy saw its connection closed
    } finally {
      await client.close();
      silent.close();
    }
  });

  test('a proxy that closes mid-session: the message is not reported sent', async () => {
    // tinyproxy closes a tunnel idle for a second; the server takes two to answer DATA.
    const slowServer = await startServer({
      tls: 'none',
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => setTimeout(() => callback(null, 'OK'), 2500));
      },
    });
    const idle = await startTinyproxy({ ports: [slowServer.port], auth: false, idleSeconds: 1 });
    const client = createClient({ host: 'localhost', port: slowServer.port, security: 'none', proxy: `http://127.0.0.1:${idle.port}` });
    try {
      await assert.rejects(client.send({ raw, envelope }), (error) => {
        assert.ok(error instanceof SmtpError, String(error));
        assert.equal(error.deliveryState, 'unknown', error.message);
        assert.match(error.hint, /proxy http:\/\/127\.0\.0\.1:\d+/, error.message);
        return true;
      });
    } finally {
      await client.close();
      await idle.stop();
      await slowServer.close();
    }
  });
});

describe("the server's first bytes in the same packet as the proxy's answer", () => {
  // A CONNECT proxy that waits for the server's greeting and sends it
  // together with its 200, in one write: the greeting must not be lost.
  test('the greeting is delivered and the message sent', async () => {
    const { connect, createServer } = await import('node:net');
    const eager = createServer((client) => {
      client.on('error', () => {});
      let head = '';
      const onHead = (chunk) => {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        client.off('data', onHead);
        const [, port] = /^CONNECT [^:]+:(\d+) /.exec(head);
        const upstream = connect({ host: '127.0.0.1', port: Number(port) });
        upstream.on('error', () => client.destroy());
        upstream.once('data', (greeting) => {
          client.write(Buffer.concat([Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n'), greeting]));
          upstream.pipe(client);
          client.pipe(upstream);
        });
      };
      client.on('data', onHead);
    });
    await new Promise((resolve) => eager.listen(0, '127.0.0.1', resolve));
    try {
      const client = createClient({ host: 'localhost', port: servers.starttls.port, security: 'starttls', tls: { ca }, proxy: `http://127.0.0.1:${eager.address().port}`, timeouts: { greeting: 3000 } });
      try {
        const result = await client.send({ raw, envelope });
        assert.deepEqual(result.accepted, ['bob@example.org']);
      } finally {
        await client.close();
      }
    } finally {
      eager.close();
    }
  });
});

describe('proxy options', () => {
  test('an unknown scheme is EINPUT before connecting', () => {
    assert.throws(() => createClient({ host: 'localhost', proxy: 'https://proxy.example:443' }), (error) => error.code === 'EINPUT' && /http:\/\/ .*socks5:\/\//.test(error.hint));
  });

  test('a custom transport that does not declare proxy support is EINPUT', () => {
    const transport = { connect: () => assert.fail('connected') };
    assert.throws(() => createClient({ host: 'localhost', proxy: 'socks5://127.0.0.1:1080', transport }), (error) => error.code === 'EINPUT' && /proxy cannot be honoured by the custom transport/.test(error.message));
  });

  test("proxy: 'env' reads WASMTP_PROXY", async () => {
    process.env.WASMTP_PROXY = `socks5://127.0.0.1:${dante.port}`;
    try {
      peers.length = 0;
      const result = await sendThrough('env', 'starttls', 'native');
      assert.deepEqual(result.accepted, ['bob@example.org']);
      assert.deepEqual(new Set(peers), new Set([DANTE_ADDRESS]));
    } finally {
      delete process.env.WASMTP_PROXY;
    }
  });
});
