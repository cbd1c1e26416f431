// The fake-server kit itself, checked with plain node:net / node:tls
// clients (no wasmtp): what a script says is what goes over the wire.

import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';

import { startFakeServer } from '../kit/fake-server.mjs';
import { ca, useSecretScanner } from '../kit/harness.mjs';
import { closeAtByte, escape, garbageBytes, parseScript, unescape } from '../kit/script.mjs';

useSecretScanner();

/** A raw client: collects every chunk received (one per read) until the server closes or `ms` pass. */
function rawClient(port, { send = [], ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    let error = null;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ chunks, text: Buffer.concat(chunks).toString('latin1'), error });
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (e) => {
      error = e.code;
    });
    socket.on('close', done);
    socket.on('connect', () => {
      for (const line of send) socket.write(line);
    });
  });
}

test('the script parser knows every step, and S+ escapes round-trip', () => {
  const steps = parseScript(
    'S: 220 x\nS+ a\\r\\n\\0\\x7f\nC: EHLO a\nC~ ^MAIL\nC* 2\nBODY\nTLS\nSTARTTLS-UP\nWAIT 1\nDELAY 2\nSPLIT 3 4\nEOF\nCLOSE\nRESET\nSTALL\nFREEZE\nREAD 5\nGARBAGE 6\nHANDSHAKE-GARBAGE 7\nMARK m\n# comment',
  );
  assert.deepEqual(
    steps.map((s) => s.op),
    ['send', 'send', 'expect', 'expect', 'skip', 'body', 'tls', 'tls', 'delay', 'delay', 'split', 'close', 'close', 'reset', 'stall', 'freeze', 'read', 'garbage', 'handshake-garbage', 'mark'],
  );
  assert.deepEqual([...steps[1].bytes], [0x61, 13, 10, 0, 0x7f]);
  const bytes = Buffer.from([0, 1, 13, 10, 92, 0x41, 0xff]);
  assert.deepEqual(unescape(escape(bytes)), bytes);
  assert.throws(() => parseScript('FLY away'), /unknown script line/);
  assert.deepEqual(garbageBytes(16, 7), garbageBytes(16, 7), 'garbage is the same every run');
  assert.ok(garbageBytes(1)[0] < 0x30 || garbageBytes(1)[0] > 0x39, 'garbage never starts like a reply code');
});

test('S: lines arrive byte-exact; C: mismatches are recorded; SPLIT sends separate segments', async () => {
  const server = await startFakeServer({ script: 'S: 220 hi\nC: HELLO\nSPLIT 1 15\nS+ 25\nSPLIT 0\nS+ 0 ok\\r\\n\nC: EXPECTED\nS: never' });
  const { text, chunks } = await rawClient(server.port, { send: ['HELLO\r\n', 'OTHER\r\n'], ms: 800 });
  assert.equal(text, '220 hi\r\n250 ok\r\n');
  assert.ok(chunks.length >= 3, `the split reply came in ${chunks.length} reads`);
  const conn = await server.connection(0);
  assert.equal(conn.failures.length, 1);
  assert.match(conn.failures[0], /sent "OTHER", expected "EXPECTED"/);
  assert.deepEqual(conn.commands.map((c) => c.text), ['HELLO', 'OTHER']);
  await server.close();
});

test('closeAtByte sends exactly that many bytes, then FIN', async () => {
  const server = await startFakeServer({ script: closeAtByte('250-a\r\n250 b\r\n', 9) });
  const { text, error } = await rawClient(server.port);
  assert.equal(text, '250-a\r\n25');
  assert.equal(error, null, 'a clean close (FIN), not a reset');
  await server.close();
});

test('RESET is a TCP reset; GARBAGE sends its bytes', async () => {
  const reset = await startFakeServer({ script: 'S: 220 x\nRESET' });
  const r = await rawClient(reset.port);
  assert.equal(r.error, 'ECONNRESET');
  await reset.close();
  const garbage = await startFakeServer({ script: 'GARBAGE 100\nCLOSE' });
  const g = await rawClient(garbage.port);
  assert.deepEqual(Buffer.from(g.text, 'latin1'), garbageBytes(100, 0x5eed + 100));
  await garbage.close();
});

test('STARTTLS-UP upgrades with the test CA; BODY reads a message; MARK and commandsAfter work', async () => {
  const server = await startFakeServer({ script: 'S: 220 x\nC: STARTTLS\nS: 220 go\nSTARTTLS-UP\nMARK tls\nC: DATA\nS: 354 go\nBODY\nS: 250 ok\nCLOSE' });
  const received = await new Promise((resolve, reject) => {
    const plain = net.connect({ host: '127.0.0.1', port: server.port });
    let buffer = '';
    plain.on('data', function onData(d) {
      buffer += d;
      if (buffer === '220 x\r\n') plain.write('STARTTLS\r\n');
      if (buffer.endsWith('220 go\r\n')) {
        plain.off('data', onData);
        const secure = tls.connect({ socket: plain, servername: 'localhost', ca: ca() }, () => {
          secure.write('DATA\r\n');
        });
        let inside = '';
        secure.on('data', (x) => {
          inside += x;
          if (inside === '354 go\r\n') secure.write('line 1\r\n..dot\r\n.\r\n');
        });
        secure.on('end', () => resolve({ inside, authorized: secure.authorized }));
        secure.on('error', reject);
      }
    });
  });
  assert.equal(received.inside, '354 go\r\n250 ok\r\n');
  assert.equal(received.authorized, true, 'the certificate verifies against the test CA');
  const conn = await server.connection(0);
  assert.equal(conn.tls, true);
  assert.deepEqual(conn.messages.map(String), ['line 1\r\n.dot\r\n']);
  assert.deepEqual(conn.commandsAfter('tls').map((c) => [c.text, c.tls]), [['DATA', true]]);
  await server.close();
});

test('FREEZE stops reading: the client\'s writes back up', async () => {
  const server = await startFakeServer({ script: 'S: 220 x\nFREEZE' });
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  await new Promise((resolve) => socket.once('data', resolve));
  const block = Buffer.alloc(1 << 20, 0x61);
  let writes = 0;
  while (socket.write(block) && writes < 256) writes += 1;
  assert.ok(writes < 256, 'write() reported back-pressure');
  assert.ok(socket.writableLength > 0);
  socket.destroy();
  await server.close();
});
