// The command line (bin/wasmtp.js, `npx wasmtp`) run as a child process
// against real smtp-server instances: sending, verifying, the transcript,
// where the password comes from, and failures with their code and hint.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { testCertificates } from './helpers/certs.js';
import { PASS, USER, startServer, startSilentServer } from './helpers/server.js';
import { EHLO_NAME } from './helpers/ehlo-name.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(PKG, 'bin', 'wasmtp.js');

/**
 * Runs a command (bounded: killed after `timeoutMs`), optionally writing
 * `input` once `waitFor` appears in its output. Resolves { code, stdout, stderr }.
 */
function run(command, args, { env = {}, timeoutMs = 30_000, input, waitFor } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: PKG,
      env: { ...cleanEnv(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let sent = input === undefined;
    const maybeSend = () => {
      if (!sent && (stdout + stderr).includes(waitFor)) {
        sent = true;
        child.stdin.write(input);
      }
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      maybeSend();
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      maybeSend();
    });
    if (input === undefined) child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ? `killed (${signal})` : code, stdout, stderr });
    });
  });
}

/** The environment without any password the developer may have set. */
function cleanEnv() {
  const env = { ...process.env };
  delete env.WASMTP_PASSWORD;
  return env;
}

const cli = (args, options) => run(process.execPath, [BIN, ...args], options);

describe('wasmtp CLI', { timeout: 120_000 }, () => {
  let starttls;
  let plain;
  let dir;
  let caFile;
  before(async () => {
    starttls = await startServer({ tls: 'starttls' });
    plain = await startServer({ tls: 'none' });
    dir = mkdtempSync(join(tmpdir(), 'wasmtp-cli-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, testCertificates().ca);
  });
  after(async () => {
    await starttls?.close();
    await plain?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const connection = () => ['--host', 'localhost', '--port', String(starttls.port), '--security', 'starttls', '--ca', caFile];

  test('npx wasmtp send: STARTTLS + AUTH, exit 0, the server got the message; -v prints a redacted transcript', async () => {
    const before = starttls.messages.length;
    const result = await run(
      'npx',
      ['--no-install', 'wasmtp', 'send', ...connection(), '--user', USER,
        '--from', 'Ann <ann@example.com>', '--to', 'bob@example.org', '--subject', 'Grüße from the CLI',
        '--text', 'sent by npx wasmtp send', '-v'],
      { env: { WASMTP_PASSWORD: PASS }, timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^accepted: bob@example\.org$/m);
    assert.match(result.stdout, /^server: 250 OK queued as Q\d+$/m);
    const transcript = result.stderr;
    for (const line of [/^S: 220 /m, new RegExp(`^C: EHLO ${EHLO_NAME.replace(/\./g, '\\.')}$`, 'm'), /^C: STARTTLS$/m, /^TLS: TLSv1\.3 .*certificate verified$/m,
      /^C: AUTH PLAIN <redacted>$/m, /^S: 235 /m, /^C: MAIL FROM:<ann@example\.com>/m, /^C: RCPT TO:<bob@example\.org>$/m,
      /^S: 250 OK queued as Q\d+$/m, /^C: QUIT$/m]) {
      assert.match(transcript, line);
    }
    const output = result.stdout + result.stderr;
    assert.ok(!output.includes(PASS), 'the password never appears');
    assert.ok(!output.includes(Buffer.from(`\0${USER}\0${PASS}`).toString('base64')), 'nor its AUTH PLAIN encoding');

    assert.equal(starttls.messages.length, before + 1);
    const got = starttls.messages.at(-1);
    assert.equal(got.user, USER);
    assert.equal(got.from, 'ann@example.com');
    assert.deepEqual(got.to, ['bob@example.org']);
    const raw = got.raw.toString('utf8');
    assert.match(raw, /^Subject: =\?UTF-8\?/m);
    assert.ok(raw.includes('sent by npx wasmtp send'));
  });

  test('send --file sends the message as is, with the envelope from --from / --to', async () => {
    const eml = 'From: ann@example.com\r\nTo: carol@example.org\r\nSubject: raw\r\nMessage-ID: <raw-1@example.com>\r\n\r\n.dot line\r\nbody\r\n';
    const file = join(dir, 'message.eml');
    writeFileSync(file, eml);
    const result = await cli(
      ['send', ...connection(), '--user', USER, '--pass-env', 'MY_SMTP_SECRET', '--file', file,
        '--from', 'bounces@example.com', '--to', 'carol@example.org', '--to', 'dave@example.org', '--json'],
      { env: { MY_SMTP_SECRET: PASS } },
    );
    assert.equal(result.code, 0, result.stderr);
    const json = JSON.parse(result.stdout);
    assert.deepEqual(json.accepted, ['carol@example.org', 'dave@example.org']);
    assert.equal(json.messageId, '<raw-1@example.com>');
    const got = starttls.messages.at(-1);
    assert.equal(got.raw.toString(), eml);
    assert.equal(got.from, 'bounces@example.com');
    assert.deepEqual(got.to, ['carol@example.org', 'dave@example.org']);
  });

  test('send with --attach and --header builds a MIME message', async () => {
    const file = join(dir, 'report.csv');
    writeFileSync(file, 'a,b\n1,2\n');
    const result = await cli(
      ['send', ...connection(), '--user', USER, '--from', 'ann@example.com', '--to', 'bob@example.org',
        '--subject', 'attachment', '--text', 'see attached', '--html', '<p>see attached</p>', '--attach', file,
        '--header', 'X-Tag: cli'],
      { env: { WASMTP_PASSWORD: PASS } },
    );
    assert.equal(result.code, 0, result.stderr);
    const raw = starttls.messages.at(-1).raw.toString();
    assert.match(raw, /^X-Tag: cli\r$/m);
    assert.match(raw, /multipart\/mixed/);
    assert.match(raw, /filename="?report\.csv"?/);
    assert.match(raw, /text\/html/);
  });

  test('--pass works but warns that it shows in ps', async () => {
    const result = await cli(['verify', ...connection(), '--user', USER, '--pass', PASS]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: --pass puts the password in the process list \(ps\)/);
    assert.ok(!result.stderr.includes(PASS));
  });

  test('verify: exit 0 and a readable summary', async () => {
    const result = await cli(['verify', ...connection(), '--user', USER], { env: { WASMTP_PASSWORD: PASS } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^OK localhost: TLSv1\.3 \S+, certificate verified; AUTH PLAIN accepted$/m);
    assert.match(result.stdout, /^extensions: .*PIPELINING/m);
    assert.equal(result.stderr, '');
  });

  test('on a terminal the password is prompted for, not echoed', async () => {
    // `script` gives the CLI a pseudo-terminal; the password is typed once the prompt shows.
    const command = [process.execPath, BIN, 'verify', ...connection(), '--user', USER, '-v']
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    const result = await run('script', ['-qec', command, '/dev/null'], {
      input: `${PASS}\r`,
      waitFor: `Password for ${USER} at localhost: `,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /Password for ann at localhost: /);
    assert.match(result.stdout, /C: AUTH PLAIN <redacted>/);
    assert.match(result.stdout, /OK localhost: .*AUTH PLAIN accepted/);
    assert.ok(!result.stdout.includes(PASS), `the typed password is not echoed:\n${JSON.stringify(result.stdout)}`);
  });

  test('without a password source and no terminal: exit 2 naming WASMTP_PASSWORD and --pass-env', async () => {
    const result = await cli(['verify', ...connection(), '--user', USER]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /WASMTP_PASSWORD/);
    assert.match(result.stderr, /--pass-env NAME/);
  });

  test('a wrong password: exit 1 with EAUTH, the message and the hint; the password never printed', async () => {
    const wrong = 'not the password 123';
    const result = await cli(['send', ...connection(), '--user', USER, '--from', 'ann@example.com', '--to', 'bob@example.org',
      '--text', 'x', '-v'], { env: { WASMTP_PASSWORD: wrong } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^wasmtp: EAUTH \(auth\): .*535/m);
    assert.match(result.stderr, /^hint: .+/m);
    assert.match(result.stderr, /^C: AUTH PLAIN <redacted>$/m);
    assert.ok(!(result.stdout + result.stderr).includes(wrong));
  });

  test('--security starttls against a server without STARTTLS: exit 1 with ESTARTTLS_UNAVAILABLE and a hint, nothing sent', async () => {
    const before = plain.messages.length;
    const authBefore = plain.authAttempts;
    const result = await cli(['send', '--host', '127.0.0.1', '--port', String(plain.port), '--security', 'starttls', '--user', USER,
      '--from', 'ann@example.com', '--to', 'bob@example.org', '--text', 'x', '-v'], { env: { WASMTP_PASSWORD: PASS } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^wasmtp: ESTARTTLS_UNAVAILABLE \(/m);
    assert.match(result.stderr, /^hint: .+/m);
    assert.doesNotMatch(result.stderr, /^C: (AUTH|MAIL)/m);
    assert.equal(plain.messages.length, before);
    assert.equal(plain.authAttempts, authBefore);
  });

  test('a self-signed server without --ca: exit 1 with ECERT, and the hint names --ca', async () => {
    const result = await cli(['verify', '--host', 'localhost', '--port', String(starttls.port), '--security', 'starttls']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^wasmtp: ECERT /m);
    assert.match(result.stderr, /^on the command line: .*--ca FILE/m);
  });

  test('--help exits 0; usage mistakes exit 2', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--host', '--port', '--security', '--user', '--pass-env', 'WASMTP_PASSWORD', '--ca', '--file', '-v, --verbose']) {
      assert.ok(help.stdout.includes(flag), flag);
    }
    for (const args of [[], ['send'], ['frobnicate', '--host', 'x'], ['send', '--host', 'x', '--bogus'], ['send', '--host', 'x', '--port', '99999']]) {
      const result = await cli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^wasmtp: /);
    }
  });

  test('usage mistakes name the flag, exit 2, and stop the doctor before it probes', async () => {
    const cases = [
      [['send', '--host', '127.0.0.1', '--security', 'bogus', '--from', 'a@b.c', '--to', 'd@e.f'], /--security bogus is not a security mode/],
      [['doctor', '127.0.0.1', '--security', 'bogus'], /--security bogus/],
      [['doctor', '127.0.0.1', '--timeout', 'soon'], /--timeout soon/],
      [['send', '--host', '127.0.0.1', '--auth-method', 'magic', '--from', 'a@b.c', '--to', 'd@e.f'], /--auth-method magic/],
      [['send', '--host', '127.0.0.1', '--port', String(plain.port), '--security', 'none', '--from', 'not an address', '--to', 'd@e.f'], /EINPUT/],
    ];
    for (const [args, pattern] of cases) {
      const result = await cli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /probing/);
    }
  });

  test('send --timeout is honoured', async () => {
    const silent = await startSilentServer();
    try {
      const result = await cli(['send', '--host', '127.0.0.1', '--port', String(silent.port), '--security', 'none', '--timeout', '300', '--from', 'a@example.com', '--to', 'b@example.org', '--text', 'x'], { timeoutMs: 20_000 });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /ETIMEDOUT \(greeting\)/);
    } finally {
      await silent.close();
    }
  });

  test('send reports the result when the final reply arrives, not after an unanswered QUIT', async () => {
    const server = await startQuietQuitServer();
    try {
      // The default command time-out is 60 s: only printing before QUIT finishes this in time.
      const result = await cli(['send', '--host', '127.0.0.1', '--port', String(server.port), '--security', 'none', '--from', 'a@example.com', '--to', 'b@example.org', '--text', 'x'], { timeoutMs: 20_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^sent <.*>$/m);
      assert.match(result.stdout, /^server: 250 2\.0\.0 queued$/m);
      assert.ok(server.sawQuit());
    } finally {
      await server.close();
    }
  });

  test('doctor --web --web-port 0 serves on a free port', async () => {
    const child = spawn(process.execPath, [BIN, 'doctor', '--web', '--web-port', '0'], { cwd: PKG, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no address printed: ${out}`)), 20_000);
        const onData = (d) => {
          out += d;
          if (/open http:\/\/127\.0\.0\.1:\d+\//.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', () => reject(new Error(`exited: ${out}`)));
      });
      const port = Number(/127\.0\.0\.1:(\d+)\//.exec(out)[1]);
      assert.ok(port > 0 && port !== 8025, out);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.once('close', resolve));
    }
  });
});

/** A server that delivers the message and never answers QUIT. */
async function startQuietQuitServer() {
  let quit = false;
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let data = false;
    let buffer = '';
    socket.write('220 quiet.example ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let at = buffer.indexOf('\r\n'); at !== -1; at = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (data) {
          if (line === '.') {
            data = false;
            socket.write('250 2.0.0 queued\r\n');
          }
        } else if (/^EHLO/i.test(line)) socket.write('250 quiet.example\r\n');
        else if (/^(MAIL|RCPT)/i.test(line)) socket.write('250 ok\r\n');
        else if (/^DATA/i.test(line)) {
          data = true;
          socket.write('354 go\r\n');
        } else if (/^QUIT/i.test(line)) quit = true;
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    sawQuit: () => quit,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
