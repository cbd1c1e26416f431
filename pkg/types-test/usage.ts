// Compiled with `tsc --noEmit` (npm run typecheck): the declarations in
// index.d.ts must accept every documented use and refuse obvious mistakes.

import { createClient, ready, SmtpError, type SendResult, type Transport, type VerifyResult } from 'wasmtp';
import { bullmqStore, createOutbox, spoolStore, type OutboxStatus } from 'wasmtp';

const client = createClient({
  host: 'smtp.example.com',
  port: 587,
  security: 'starttls',
  auth: { user: 'u', pass: 'p' },
  tls: { ca: '-----BEGIN CERTIFICATE-----', servername: 'smtp.example.com', rejectUnauthorized: true },
  allowInsecureAuth: false,
  clientName: 'app.example.com',
  timeouts: { connect: 30_000, greeting: 30_000, command: 60_000, dataEnd: 600_000 },
  pool: { maxConnections: 4, maxMessagesPerConnection: 100 },
  onTranscript: (line) => {
    const dir: 'C' | 'S' | 'tls' = line.dir;
    console.log(dir, line.text);
  },
});

createClient({ host: 'smtp.gmail.com', security: 'tls', auth: { user: 'u', accessToken: 't', method: 'XOAUTH2' } });
createClient({ host: 'h', pool: { maxConnections: 2, idleTimeout: 5_000, rate: 10, rateBurst: 5 } });
// @ts-expect-error rate is a number of messages per second
createClient({ host: 'h', pool: { rate: '10/s' } });

// @ts-expect-error security is one of four modes
createClient({ host: 'h', security: 'ssl' });
// @ts-expect-error host is required
createClient({ port: 25 });

async function main(): Promise<void> {
  const result: SendResult = await client.send({
    from: 'Ann <ann@example.com>',
    to: ['bob@example.org'],
    cc: [],
    bcc: [],
    subject: 'Hi',
    text: 'plain body',
    html: '<p>html body</p>',
    attachments: [
      { filename: 'a.pdf', content: new Uint8Array(4), contentType: 'application/pdf' },
      { filename: 'b.txt', content: 'text' },
      { filename: 'c.csv', content: new ReadableStream<Uint8Array>() },
    ],
    headers: { 'X-Tag': 'v' },
  });
  const firstRejected: number | undefined = result.rejected[0]?.code;
  console.log(result.messageId, result.accepted.join(), firstRejected, result.response, result.queueId);

  await client.send({ raw: 'Subject: x\r\n\r\nbody', envelope: { from: 'ann@example.com', to: ['bob@example.org'] } });
  await client.send({ raw: new Uint8Array(1), envelope: { from: '', to: 'bob@example.org' } });
  // @ts-expect-error a raw message needs an envelope
  await client.send({ raw: 'Subject: x\r\n\r\nbody' });

  const info: VerifyResult = await client.verify();
  console.log(info.capabilities.extensions, info.tls?.authorized, info.authMethod);

  try {
    await client.send({ from: 'a@example.com', to: 'b@example.org', text: 'x' });
  } catch (err) {
    if (err instanceof SmtpError) {
      const fields: [string, string, boolean, 'not-sent' | 'unknown'] = [err.code, err.phase, err.retryable, err.deliveryState];
      console.log(fields, err.hint, err.reply?.enhancedCode, err.transcript?.length, err.message);
      const resend: boolean = err.resendSafe;
      const options: string[] = err.fix.map((f) => (f.value === undefined ? f.option : `${f.option}=${f.value}`));
      console.log(resend, options);
    }
  }
  await client.close();
}

// A custom transport (for example over a proxy) type-checks against the interface.
const transport: Transport = {
  async connect() {
    return {
      write: async (_bytes: Uint8Array) => {},
      startTls: async () => {},
      close: () => {},
      onData: null,
      onClose: null,
    };
  },
};
createClient({ host: 'h', transport });

void main();

// The outbox.
async function outboxUsage() {
  const outbox = createOutbox({
    client: createClient({ host: 'h' }),
    store: spoolStore({ dir: './outbox', pollInterval: 200 }),
    retry: { maxAttempts: 5, maxAge: 86_400_000, initialDelay: 1000, jitter: 0.2 },
    onOutcome: (status) => {
      const state: 'queued' | 'sending' | 'sent' | 'deferred' | 'failed' | 'unknown' = status.state;
      console.log(state, status.error?.code, status.reply, status.result?.accepted);
    },
  });
  const id: string = await outbox.enqueue({ from: 'a@example.com', to: 'b@example.org', text: 'x' }, { id: 'order-1', delay: 1000 });
  const status: OutboxStatus | null = await outbox.status(id);
  if (status?.state === 'unknown') await outbox.retry(id);
  await outbox.discard(id, { reason: 'arrived' });
  await outbox.markSent(id);
  const dead: OutboxStatus[] = await outbox.deadLetters();
  console.log(dead.length, (await outbox.list({ state: 'deferred', limit: 10 })).length);
  await outbox.work({ concurrency: 4 });
  await outbox.close();
  createOutbox({ client: createClient({ host: 'h' }), store: bullmqStore({ connection: { host: '127.0.0.1', port: 6379 }, lockDuration: 10_000 }) });
  // Idempotency keys are remembered for the retention of sent and failed records.
  const spool = spoolStore({ dir: './outbox', keepSent: 86_400_000, keepFailed: 7 * 86_400_000 });
  await spool.prune();
  await bullmqStore({ connection: {}, keepSent: 3_600_000, keepFailed: 86_400_000 }).prune({ limit: 100 });
  // @ts-expect-error a state is one of six
  const wrong: OutboxStatus['state'] = 'done';
  // @ts-expect-error the client is required
  createOutbox({ retry: {} });
  // @ts-expect-error maxAttempts is a number
  createOutbox({ client: createClient({ host: 'h' }), retry: { maxAttempts: 'many' } });
  console.log(wrong);
}
void outboxUsage;

// ready(): optional warm-up, resolves with nothing.
const warm: Promise<void> = ready();
void warm;

// ----- message fields, buildMessage, the test client, wasmtp/nodemailer

import { buildMessage, createTestClient } from 'wasmtp';
import nodemailer, { createTransport, type SentMessageInfo } from 'wasmtp/nodemailer';

async function fields(): Promise<void> {
  await client.send({
    from: { name: 'Ann', address: 'ann@example.com' },
    to: ['bob@example.org', { address: 'zoe@example.org' }],
    sender: 'robot@example.com',
    inReplyTo: '<a@example.com>',
    references: ['<r@example.com>'],
    date: new Date(),
    priority: 'high',
    text: { path: './body.txt' },
    html: { href: 'https://example.com/body.html' },
    attachments: [{ filename: 'a.pdf', content: 'AAEC', encoding: 'base64' }, { path: '/tmp/x.zip' }, { href: 'https://example.com/x.png', cid: 'x@example.com' }],
    alternatives: [{ contentType: 'text/x-web-markdown', content: '# md' }],
    icalEvent: { method: 'REQUEST', content: 'BEGIN:VCALENDAR' },
    list: { unsubscribe: 'https://example.com/u', oneClick: true },
    envelope: { from: 'bounces@example.com', to: ['only@example.org'], dsn: { notify: ['never'] } },
  });
  // @ts-expect-error priority is high, normal or low
  await client.send({ from: 'a@b.c', to: 'd@e.f', priority: 'urgent' });
  createClient({ host: 'h', tls: { minVersion: 'TLSv1.3' } });
  // @ts-expect-error TLS below 1.2 is never used
  createClient({ host: 'h', tls: { minVersion: 'TLSv1.1' } });
  createClient({
    host: 'h',
    proxy: 'socks5://user:pass@proxy.example:1080',
    localAddress: '192.0.2.10',
    tls: { cert: '-----BEGIN CERTIFICATE-----', key: '-----BEGIN PRIVATE KEY-----', passphrase: 'p', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' },
  });
  createClient({ host: 'h', tls: { pfx: new Uint8Array(0), passphrase: 'p' } });
  // @ts-expect-error proxy is a URL string
  createClient({ host: 'h', proxy: { host: 'proxy.example', port: 1080 } });

  const built = await buildMessage({ from: 'a@b.c', to: 'd@e.f', text: 'x' });
  const bytes: Uint8Array = built.raw;
  const streamed = await buildMessage({ from: 'a@b.c', to: 'd@e.f', text: 'x' }, { stream: true });
  const stream: ReadableStream<Uint8Array> = streamed.stream;
  const testClient = createTestClient();
  await testClient.send({ from: 'a@b.c', to: 'd@e.f', text: 'x' });
  const captured: Uint8Array = testClient.messages[0].raw;
  console.log(bytes, stream, captured);

  const transporter = createTransport({ host: 'smtp.example.com', port: 587, requireTLS: true, auth: { user: 'u', pass: 'p' } });
  const info: SentMessageInfo = await transporter.sendMail({ from: 'a@b.c', to: 'd@e.f', text: 'x' });
  const rejected: string[] = info.rejected;
  transporter.sendMail({ from: 'a@b.c', to: 'd@e.f' }, (error, result) => console.log(error?.code, error?.responseCode, result?.messageId));
  nodemailer.createTransport('smtps://u:p@smtp.example.com');
  console.log(rejected);
}
void fields;

// DKIM: one key or several, on the client or per message.
async function dkimUsage(pem: string, cryptoKey: CryptoKey) {
  const client = createClient({
    host: 'smtp.example.com',
    dkim: [
      { domain: 'example.com', selector: 'rsa2026', privateKey: pem },
      { domain: 'example.com', selector: 'ed2026', privateKey: cryptoKey, algorithm: 'ed25519-sha256', canonicalization: 'relaxed/relaxed', expires: 86_400 },
    ],
  });
  await client.send(
    { from: 'a@example.com', to: 'b@example.org', text: 'x', attachments: [{ filename: 'r.csv', content: () => new Blob(['a,b']).stream() }] },
    { dkim: { domain: 'example.com', selector: 'kms', privateKey: async (data) => data, headers: ['From', 'Subject'] } },
  );
  await client.send({ raw: 'From: a@example.com\r\n\r\nx', envelope: { from: 'a@example.com', to: ['b@example.org'] } }, { dkim: false });
  // @ts-expect-error the algorithm is rsa-sha256 or ed25519-sha256
  createClient({ host: 'h', dkim: { domain: 'd', selector: 's', privateKey: pem, algorithm: 'rsa-sha1' } });
  // @ts-expect-error a selector is required
  createClient({ host: 'h', dkim: { domain: 'd', privateKey: pem } });
}
void dkimUsage;

// OAuth2: a token, a token provider, or oauth2() (the refresh-token grant).
import { oauth2, type AccessTokenProvider } from 'wasmtp';
function oauthUsage(vault: { token(): Promise<string> }) {
  const google = oauth2({ tokenUrl: 'https://oauth2.googleapis.com/token', clientId: 'id', clientSecret: 'secret', refreshToken: 'rt' });
  createClient({ host: 'smtp.gmail.com', security: 'tls', auth: { user: 'ann@gmail.com', accessToken: google } });
  const own: AccessTokenProvider = async ({ user, refresh }) => ({ accessToken: `${user}${refresh}`, expires: new Date() });
  createClient({ host: 'smtp.office365.com', auth: { user: 'ann@example.com', accessToken: own } });
  createClient({ host: 'h', auth: { user: 'u', accessToken: () => vault.token() } });
  // @ts-expect-error the refresh token is required
  oauth2({ tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token', clientId: 'id' });
  // @ts-expect-error a provider resolves with a token, not a number
  createClient({ host: 'h', auth: { user: 'u', accessToken: async () => 42 } });
  const transporter = createTransport({ host: 'smtp.gmail.com', auth: { type: 'OAuth2', user: 'u', clientId: 'id', clientSecret: 's', refreshToken: 'rt' } });
  transporter.on('token', ({ user, accessToken, expires }) => console.log(user, accessToken, expires));
}
void oauthUsage;
// Direct delivery and the resolver.
import { createResolver, type MxSendResult, type Resolver } from 'wasmtp';
async function mxUsage() {
  const direct = createClient({ mx: true, dns: { doh: 'https://cloudflare-dns.com/dns-query' }, security: 'starttls' });
  const result: MxSendResult = await direct.send({ from: 'a@example.com', to: ['b@example.org'], text: 'x' });
  const statuses: Array<'accepted' | 'rejected' | 'deferred'> = result.recipients.map((r) => r.status);
  void statuses;
  await direct.send({ from: 'a@example.com', to: ['b@example.org'], text: 'x' }, { recipients: ['b@example.org'] });
  createClient({ mx: { port: 2525 }, dns: { servers: ['127.0.0.1:5353'] } });
  // @ts-expect-error implicit TLS is not a mode of MX delivery
  createClient({ mx: true, security: 'tls' });
  const resolver: Resolver = createResolver();
  const mx: Array<{ exchange: string; priority: number }> = await resolver.mx('example.org');
  const txt: string[] = await resolver.txt('_mta-sts.example.org');
  createClient({ mx: true, dns: resolver });
  void mx;
  void txt;
}
void mxUsage;
// The domain doctor: its own options and report, the verdict typed.
import { diagnose, type DomainDiagnoseReport } from 'wasmtp';
async function domainDoctorUsage() {
  const report: DomainDiagnoseReport = await diagnose({ domain: 'example.com', selector: 'mail2026', dns: { servers: ['127.0.0.1:5353'] }, mxPort: 2525 });
  const mode: 'relay' | 'direct' = report.verdict.mode;
  const codes = report.findings.map((f) => f.code).filter((c) => c === 'SPF_TOO_MANY_LOOKUPS' || c === 'PORT_25_BLOCKED');
  const host = await diagnose({ host: 'smtp.example.com' });
  void [mode, codes, host.recommended];
  // @ts-expect-error the verdict is relay or direct
  const wrong: 'smarthost' = report.verdict.mode;
  void wrong;
}
void domainDoctorUsage;
