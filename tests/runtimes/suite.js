// The send suite, run unchanged in every runtime (Node, Deno, Bun, workerd).
// It uses only the package's public API and web-standard globals: no node:
// modules, no runtime APIs. The runner (run.mjs) starts the servers, passes
// their ports in `config`, and checks on the server side what arrived.
//
// runSuite({ createClient, oauth2, ready, SmtpError, config }) resolves with
//   { results: [{ name, ok, ms, error?, detail? }], sent: [{ tag, to, user }] }
// where `sent` lists the messages the server must have received.

/**
 * @param {object} args
 * @param {Function} args.createClient  the entry point's createClient
 * @param {Function} args.ready  the entry point's ready()
 * @param {Function} args.SmtpError
 * @param {Function} [args.oauth2]  the entry point's oauth2 (the refresh-token provider)
 * @param {object} args.config  from run.mjs: { runtime, host, ports: {...}, ca, pin, wrongPin, tokenUrl,
 *   user, pass, nativeCa, nativeUntrusted, engines: ['native'|'wasm'], caTrueCert?, only? }
 */
export async function runSuite({ createClient, oauth2, ready, SmtpError, config, createResolver }) {
  const results = [];
  const sent = [];
  const { host, ports, user, pass } = config;
  const timeouts = { connect: 5000, tlsHandshake: 5000, greeting: 5000, command: 10000, dataEnd: 10000 };

  async function test(name, fn) {
    if (config.only && !name.includes(config.only)) return;
    const started = Date.now();
    try {
      const detail = await withLimit(fn(), 20_000, name);
      results.push({ name, ok: true, ms: Date.now() - started, detail });
    } catch (error) {
      results.push({ name, ok: false, ms: Date.now() - started, error: describe(error) });
    }
  }

  /** Sends one message and records it for the server-side check. */
  async function send(name, options, message = {}) {
    const tag = `${config.runtime}/${name}`;
    const to = message.to ?? ['bob@example.org'];
    const client = createClient({ host, timeouts, ...options });
    try {
      const result = await client.send({
        from: 'Ann <ann@example.com>',
        to,
        subject: tag,
        text: `sent by ${tag}\n`,
        ...message,
      });
      const accepted = to.filter((a) => !a.startsWith('reject'));
      sent.push({ tag, to: accepted, user: options.auth?.user, dkim: options.dkim ? [options.dkim].flat().length : 0 });
      return result;
    } finally {
      await client.close();
    }
  }

  async function expectError(promise, code, check) {
    try {
      await promise;
    } catch (error) {
      assert(error instanceof SmtpError, `expected an SmtpError, got ${describe(error)}`);
      assert(error.code === code, `expected ${code}, got ${error.code}: ${error.message}`);
      assert(error.deliveryState === 'not-sent', `deliveryState ${error.deliveryState}`);
      check?.(error);
      return `${error.code} (${error.phase}): ${error.detail ?? error.message}${error.hint ? ` | hint: ${error.hint}` : ''}`;
    }
    throw new Error(`expected ${code}, but it succeeded`);
  }

  const auth = (method) => ({ user, pass, ...(method ? { method } : {}) });

  // First, before any client: the engine loads up front in this runtime.
  await test('ready() loads the engine', async () => {
    const loaded = await ready();
    assert(loaded === undefined, `ready() resolved with ${describe(loaded)}`);
    assert((await ready()) === undefined, 'a second ready() resolves too');
    return 'engine loaded';
  });

  for (const engine of config.engines) {
    const wasm = engine === 'wasm';
    const p = wasm ? 'wasm-tls/' : '';
    // Trust for the test CA: passed as tls.ca, unless the platform is
    // configured to trust it (Workers' own TLS takes no per-connection CA).
    const tls = wasm ? { engine: 'wasm', ca: config.ca } : config.nativeCa ? { ca: config.ca } : undefined;

    if (!wasm) {
      await test('plain', async () => {
        const r = await send('plain', { port: ports.plain, security: 'none' }, { to: ['bob@example.org', 'carol@example.org'] });
        assert(r.accepted.length === 2 && r.rejected.length === 0, JSON.stringify(r));
        assert(/^<.+@.+>$/.test(r.messageId), `messageId ${r.messageId}`);
        return r.response;
      });
    }

    if (!wasm && config.dkimKeys) {
      // RSA and Ed25519 through this runtime's WebCrypto, and a one-shot
      // stream spooled for the first pass (a file, or memory on Workers).
      await test('dkim rsa + ed25519, streamed attachment', async () => {
        const dkim = [
          { domain: 'example.com', selector: 'rsa', privateKey: config.dkimKeys.rsa },
          { domain: 'example.com', selector: 'ed', privateKey: config.dkimKeys.ed25519 },
        ];
        const stream = new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('a,b\n'.repeat(50_000)));
            controller.close();
          },
        });
        const r = await send('dkim', { port: ports.plain, security: 'none', dkim }, { attachments: [{ filename: 'data.csv', content: stream }] });
        assert(r.accepted.join() === 'bob@example.org', JSON.stringify(r));
        return r.response;
      });
    }

    await test(`${p}starttls`, async () => {
      const r = await send(`${p}starttls`, { port: ports.starttls, security: 'starttls', tls });
      assert(r.accepted.join() === 'bob@example.org', JSON.stringify(r));
      return r.response;
    });

    if (config.tokenUrl) {
      // oauth2() over this runtime's fetch; the server refuses the first
      // token, so the engine asks for a fresh one and AUTH runs again.
      await test(`${p}oauth2 refresh`, async () => {
        assert(typeof oauth2 === 'function', 'the entry point exports oauth2');
        const accessToken = oauth2({ tokenUrl: config.tokenUrl, clientId: `${config.runtime}/${engine}`, clientSecret: 'client-secret', refreshToken: 'refresh-token' });
        const lines = [];
        const r = await send(`${p}oauth2`, { port: ports.starttls, security: 'starttls', tls, auth: { user, accessToken }, onTranscript: (l) => lines.push(l.text) });
        const attempts = lines.filter((t) => t.startsWith('AUTH XOAUTH2')).length;
        assert(attempts === 2 && !lines.some((t) => t.includes('access-token')), `AUTH attempts: ${attempts}`);
        return r.response;
      });
    }

    await test(`${p}starttls verify`, async () => {
      const client = createClient({ host, port: ports.starttls, security: 'starttls', tls, timeouts });
      try {
        const info = await client.verify();
        assert(info.tls && info.tls.authorized === true, `tls ${JSON.stringify(info.tls)}`);
        assert(info.capabilities.starttls === false, 'STARTTLS is not offered again inside TLS');
        return `${info.tls.version} ${info.tls.cipher ?? ''}`.trim();
      } finally {
        await client.close();
      }
    });

    await test(`${p}implicit tls`, async () => {
      const lines = [];
      const r = await send(`${p}implicit tls`, { port: ports.implicit, security: 'tls', tls, onTranscript: (l) => lines.push(l) });
      assert(r.accepted.join() === 'bob@example.org', JSON.stringify(r));
      const tlsLine = lines.find((l) => l.dir === 'tls');
      assert(tlsLine && /certificate verified/.test(tlsLine.text), `TLS line: ${tlsLine?.text}`);
      assert(lines.findIndex((l) => l.dir === 'tls') < lines.findIndex((l) => l.dir === 'S'), 'TLS before the greeting');
      return `${tlsLine.text}; ${r.response}`;
    });

    for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
      await test(`${p}auth ${method}`, async () => {
        const lines = [];
        const r = await send(`${p}auth ${method}`, {
          port: ports.starttls,
          security: 'starttls',
          tls,
          auth: auth(method),
          onTranscript: (line) => lines.push(line),
        });
        assert(r.accepted.length === 1, JSON.stringify(r));
        const authLine = lines.find((l) => l.dir === 'C' && l.text.startsWith('AUTH '));
        assert(authLine && authLine.text.startsWith(`AUTH ${method}`), `AUTH line: ${authLine?.text}`);
        assert(!lines.some((l) => l.text.includes(pass)), 'the password appears in the transcript');
        return authLine.text;
      });
    }

    await test(`${p}auth wrong password`, () =>
      expectError(
        send(`${p}auth wrong password`, { port: ports.starttls, security: 'starttls', tls, auth: { user, pass: 'wrong' } }),
        'EAUTH',
        (e) => assert(e.reply?.code === 535, `reply ${JSON.stringify(e.reply)}`),
      ),
    );

    await test(`${p}partial recipients`, async () => {
      const r = await send(
        `${p}partial recipients`,
        { port: ports.starttls, security: 'starttls', tls, auth: auth() },
        { to: ['bob@example.org', 'reject-me@example.org', 'carol@example.org'] },
      );
      assert(r.accepted.join() === 'bob@example.org,carol@example.org', JSON.stringify(r.accepted));
      assert(r.rejected.length === 1 && r.rejected[0].address === 'reject-me@example.org', JSON.stringify(r.rejected));
      assert(r.rejected[0].code === 550, JSON.stringify(r.rejected[0]));
      return `accepted ${r.accepted.length}, rejected ${r.rejected[0].address} ${r.rejected[0].code}`;
    });

    await test(`${p}large message (2 MiB attachment)`, async () => {
      const content = new Uint8Array(2 * 1024 * 1024);
      for (let i = 0; i < content.length; i++) content[i] = (i * 7919) & 0xff;
      const r = await send(
        `${p}large message`,
        { port: ports.starttls, security: 'starttls', tls, auth: auth() },
        { attachments: [{ filename: 'big.bin', content, contentType: 'application/octet-stream' }] },
      );
      assert(r.accepted.length === 1, JSON.stringify(r));
      return r.response;
    });

    await test(`${p}all recipients rejected`, () =>
      expectError(
        send(`${p}all recipients rejected`, { port: ports.plain, security: 'none' }, { to: ['reject-a@example.org'] }),
        'ERECIPIENTS',
      ),
    );

    await test(`${p}starttls required but not offered`, () =>
      expectError(send(`${p}starttls missing`, { port: ports.plain, security: 'starttls', tls, auth: auth() }), 'ESTARTTLS_UNAVAILABLE'),
    );

    // An untrusted certificate: the fix named is tls.ca.
    if (wasm || config.nativeUntrusted !== false) {
      const untrusted = wasm ? { engine: 'wasm' } : undefined;
      await test(`${p}untrusted certificate`, () =>
        expectError(send(`${p}untrusted`, { port: ports.starttls, security: 'starttls', tls: untrusted }), 'ECERT', (e) => {
          assert(e.phase === 'starttls', `phase ${e.phase}`);
          assert(/tls\.ca/.test(e.hint ?? ''), `hint: ${e.hint}`);
        }),
      );
      // Workers' own TLS reports a refused certificate on an implicit-TLS
      // connection as "proxy request failed", like a refused connection.
      const platform = !wasm && config.runtime.startsWith('workerd');
      await test(`${p}untrusted certificate (implicit tls)`, () =>
        expectError(
          send(`${p}untrusted implicit`, { port: ports.implicit, security: 'tls', tls: untrusted }),
          platform ? 'ECONNECT' : 'ECERT',
          (e) => assert(platform ? /certificate is not trusted/.test(e.hint) : e.phase === 'tls', `${e.phase}: ${e.hint}`),
        ),
      );
    }

    // security: 'tls' against a port that expects STARTTLS. Workers' own
    // TLS cannot tell this from a refused connection ("proxy request failed").
    await test(`${p}tls to a starttls port`, () => {
      const platform = !wasm && config.runtime.startsWith('workerd');
      return expectError(
        send(`${p}port mix-up`, { port: ports.starttls, security: 'tls', tls }),
        platform ? 'ECONNECT' : 'ETLS_PORT_MISMATCH',
        (e) => assert(/security: 'starttls'/.test(e.hint ?? ''), `hint: ${e.hint}`),
      );
    });

    if (wasm) {
      await test('wasm-tls/pinned certificate', async () => {
        const r = await send('wasm-tls/pinned', { port: ports.implicit, security: 'tls', tls: { engine: 'wasm', pin: config.pin } });
        assert(r.accepted.length === 1, JSON.stringify(r));
        return `pin ${config.pin.slice(0, 11)}…`;
      });
      await test('wasm-tls/wrong pin rejected', () =>
        expectError(
          send('wasm-tls/wrong pin', { port: ports.starttls, security: 'starttls', tls: { engine: 'wasm', pin: config.wrongPin } }),
          'ECERT',
          (e) => assert(/pinned/.test(e.message), e.message),
        ),
      );
      if (ports.caTrue) {
        await test('wasm-tls/self-signed certificate', () =>
          expectError(send('wasm-tls/self-signed', { port: ports.caTrue, security: 'tls', tls: { engine: 'wasm' } }), 'ECERT', (e) =>
            assert(/self-signed/.test(e.detail) && /tls\.pin/.test(e.detail) && /fingerprint/.test(e.detail), e.detail),
          ),
        );
      }
      await test('wasm-tls/malformed pin is EINPUT', () =>
        expectError(send('wasm-tls/bad pin', { port: ports.implicit, security: 'tls', tls: { engine: 'wasm', pin: 'AB:CD' } }), 'EINPUT'),
      );
    }
  }

  // `wasmtp/workers`: the platform's TLS takes no CA, and TLS in wasm needs `wasmtp/workers/tls`.
  if (config.workersEntryChecks) {
    await test('workers: mx: true says that Workers block port 25 and recommends a relay', () =>
      expectError(
        (async () => createClient({ mx: true }))(),
        'ECONNECT',
        (e) => assert(/Cloudflare Workers block outbound connections to port 25/.test(e.message) && /relay/.test(e.hint), e.message),
      ),
    );
    await test('workers: tls.ca without the wasm engine is EINPUT', () =>
      expectError(
        (async () => createClient({ host, port: ports.starttls, tls: { ca: config.ca } }))(),
        'EINPUT',
        (e) => assert(/wasmtp\/workers\/tls/.test(e.hint), e.hint),
      ),
    );
    // Workers sockets cannot be pointed at a proxy by this package, nor take client TLS settings.
    for (const [what, options] of [
      ['proxy', { proxy: 'socks5://127.0.0.1:1080' }],
      ['tls.ciphers', { tls: { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } }],
      ['localAddress', { localAddress: '127.0.0.1' }],
    ]) {
      await test(`workers: ${what} is EINPUT naming the runtime`, () =>
        expectError(
          (async () => createClient({ host, port: ports.starttls, ...options }))(),
          'EINPUT',
          (e) => assert(e.message.includes(what) && /Cloudflare Workers/.test(e.message), e.message),
        ),
      );
    }
    await test("workers: tls.engine 'wasm' from wasmtp/workers is EINPUT", () =>
      expectError(
        send('wasm-from-core', { port: ports.starttls, security: 'starttls', tls: { engine: 'wasm', ca: config.ca } }),
        'EINPUT',
        (e) => assert(/wasmtp\/workers\/tls/.test(e.hint), e.hint),
      ),
    );
  }

  // Deno refuses a self-signed certificate marked CA:TRUE as the server's own
  // certificate even when it is passed as tls.ca: the error must say so.
  if (config.ports.caTrue && config.caTrueCert) {
    await test('self-signed CA:TRUE server certificate', async () => {
      const options = { port: config.ports.caTrue, security: 'tls', tls: { ca: config.caTrueCert } };
      if (config.runtime !== 'deno') {
        const r = await send('ca-true', options);
        return `accepted by this runtime (${r.response})`;
      }
      return expectError(send('ca-true', options), 'ECERT', (e) => assert(/Deno/.test(e.hint), `hint: ${e.hint}`));
    });
  }

  // The resolver of MX delivery and the domain doctor, against the runner's
  // dnsmasq: the runtime's own (dns: { servers }) where it has one, and
  // DNS-over-HTTPS through the local endpoint (the test CA trusted by the runtime).
  if (config.dns && createResolver) {
    const check = async (resolver) => {
      const mx = (await resolver.mx('example.test')).sort((a, b) => a.priority - b.priority);
      assert(JSON.stringify(mx) === '[{"exchange":"mx1.example.test","priority":10},{"exchange":"mx2.example.test","priority":20}]', JSON.stringify(mx));
      const nullMx = await resolver.mx('nullmx.test');
      assert(JSON.stringify(nullMx) === '[{"exchange":"","priority":0}]', `null MX: ${JSON.stringify(nullMx)}`);
      const txt = await resolver.txt('_mta-sts.example.test');
      assert(txt.join() === 'v=STSv1; id=2026', `TXT ${JSON.stringify(txt)}`);
      // A record's character-strings are joined; separate records stay apart.
      const long = (await resolver.txt('long.example.test')).sort();
      assert(long.length === 2 && long[0] === 'k'.repeat(250) + 'e'.repeat(100) && long[1] === 'second', `long TXT ${JSON.stringify(long.map((t) => t.length))}`);
      const a = await resolver.a('mx1.example.test');
      assert(a.join() === '127.0.0.2', `A ${JSON.stringify(a)}`);
      const aaaa = await resolver.aaaa('mx1.example.test');
      assert(aaaa.join() === '::1', `AAAA ${JSON.stringify(aaaa)}`);
      const missing = await resolver.mx('missing.test');
      assert(missing.length === 0, `NXDOMAIN ${JSON.stringify(missing)}`);
      return `MX ${mx.map((r) => r.exchange).join(', ')}; null MX; TXT (one of two strings); A; AAAA; NXDOMAIN → []`;
    };
    if (config.dns.server) await test('dns: the runtime resolver (dns.servers)', () => check(createResolver({ servers: [config.dns.server] })));
    // Direct delivery end to end: direct.test's MX is 127.0.0.1, on the plain server's port.
    if (config.dns.server) {
      await test('dns: mx: true delivers to the MX found through the runtime resolver', async () => {
        const tag = `${config.runtime}/mx-direct`;
        const client = createClient({ mx: { port: ports.plain }, dns: { servers: [config.dns.server] }, timeouts, clientName: 'sender.example.com' });
        try {
          const r = await client.send({ from: 'ann@example.com', to: ['bob@direct.test', 'reject-x@direct.test'], subject: tag, text: 'direct\n' });
          assert(r.accepted.join() === 'bob@direct.test' && r.rejected.join() === 'reject-x@direct.test', JSON.stringify(r));
          sent.push({ tag, to: ['bob@direct.test'], user: undefined });
          return `${r.recipients[0].host}: ${r.recipients[0].reply}`;
        } finally {
          await client.close();
        }
      });
    }
    if (config.dns.doh) await test('dns: DNS-over-HTTPS (dns.doh)', () => check(createResolver({ doh: config.dns.doh })));
  }

  return { results, sent };
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

function withLimit(promise, ms, name) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no outcome after ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function describe(error) {
  if (error && typeof error === 'object') return error.stack && !error.code ? error.stack : `${error.name}: ${error.message}`;
  return String(error);
}
