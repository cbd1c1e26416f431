// The batch pattern and its check, shared by every server in this suite:
// ten raw messages sent at once (Promise.allSettled of client.send) through
// ONE pooled connection (pool.maxConnections 1), each from its own envelope
// sender, some made to fail on purpose; then every message's outcome as
// wasmtp reported it is compared with what the server really delivered and
// with which envelope sender.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient, SmtpError } from '../../pkg/src/index.js';

export const MESSAGES = 10;
/** "Message 4" of the pattern (numbered from 1): index 3. */
export const FOURTH = 3;

let runs = 0;

/**
 * Sends the batch and checks it.
 *
 * @param {object} server        has deliveries() → [{ returnPath, recipient, headers }] and log()
 * @param {object} o
 * @param {object} o.client      createClient options (host, port, security, lmtp, tls, auth ...)
 * @param {(i: number) => string} o.sender     the envelope sender of message i
 * @param {(i: number) => string[]} o.recipients  its recipients
 * @param {Record<number, {code: number, errorCode?: string, retryable?: boolean}>} o.failing
 *        messages the server must refuse, with the reply code it refuses them with
 *        (and, when given, the SmtpError code wasmtp must report; retryable defaults
 *        to code < 500)
 * @param {Record<number, string[]>} [o.refusedRecipients]
 *        recipients the server refuses while it accepts the message for the others
 * @param {number} [o.connections]  how many connections the batch may use (default 1)
 * @param {boolean} [o.lockstep]   the server offers no PIPELINING: the client must write one
 *        command per round trip, RSET included (checked on the transcript, as well as by the
 *        servers themselves, which refuse early commands)
 */
export async function sendAndCheckBatch(server, { client: clientOptions, sender, recipients, failing, refusedRecipients = {}, connections = 1, lockstep = false }) {
  const wanted = (i) => recipients(i).filter((r) => !refusedRecipients[i]?.includes(r));
  const tag = `batch${++runs}-${process.pid}-${Date.now()}`;
  const transcript = [];
  const client = createClient({
    host: '127.0.0.1',
    clientName: 'client.test',
    // A hang must fail the test quickly, not after RFC 5321's ten minutes.
    timeouts: { connect: 10_000, greeting: 15_000, command: 15_000, dataEnd: 15_000 },
    ...clientOptions,
    pool: { maxConnections: 1 },
    onTranscript: (line) => transcript.push(`${line.dir}: ${line.text}`),
  });
  const messages = Array.from({ length: MESSAGES }, (_, i) => ({
    raw:
      `From: <${sender(i)}>\r\nTo: ${recipients(i).map((r) => `<${r}>`).join(', ')}\r\n` +
      `Subject: ${tag} message ${i + 1}\r\nMessage-ID: <${tag}.${i}@client.test>\r\n` +
      `X-Wasmtp-Batch: ${tag} ${i}\r\n\r\nThis is message ${i + 1} of ${tag}.\r\n`,
    envelope: { from: sender(i), to: recipients(i) },
  }));
  let results;
  try {
    results = await Promise.allSettled(messages.map((message) => client.send(message)));
  } finally {
    await client.close().catch(() => {});
  }

  // Every way the batch went wrong is collected, then reported at once with
  // wasmtp's outcomes, the transcript and the server's log.
  const problems = [];
  const expect = (ok, what) => {
    if (!ok) problems.push(what);
  };

  // What wasmtp reported.
  for (let i = 0; i < MESSAGES; i++) {
    const result = results[i];
    const expected = failing[i];
    const n = i + 1;
    if (!expected) {
      if (result.status !== 'fulfilled') {
        problems.push(`message ${n} (a valid message) was not sent`);
        continue;
      }
      expect(same(result.value.accepted, wanted(i)), `message ${n}: accepted ${result.value.accepted}, expected ${wanted(i)}`);
      const refused = result.value.rejected.map((r) => r.address);
      expect(same(refused, refusedRecipients[i] ?? []), `message ${n}: rejected ${refused}, expected ${refusedRecipients[i] ?? 'none'}`);
      continue;
    }
    if (result.status !== 'rejected') {
      problems.push(`message ${n} should have been refused by the server (${expected.code})`);
      continue;
    }
    const error = result.reason;
    if (!(error instanceof SmtpError)) {
      problems.push(`message ${n}: not an SmtpError: ${error?.stack ?? error}`);
      continue;
    }
    expect(error.reply?.code === expected.code, `message ${n} must fail with the server's own reply ${expected.code}, not ${error.reply?.code}`);
    if (expected.errorCode) expect(error.code === expected.errorCode, `message ${n}: ${error.code}, expected ${expected.errorCode}`);
    const retryable = expected.retryable ?? expected.code < 500;
    expect(error.retryable === retryable, `message ${n}: retryable=${error.retryable} after a ${expected.code}`);
  }

  // One pooled connection: one EHLO/LHLO per connection (two with STARTTLS).
  const greetings = transcript.filter((l) => /^C: (EHLO|LHLO) /i.test(l)).length;
  const tlsUpgrades = transcript.filter((l) => /^C: STARTTLS$/i.test(l)).length;
  expect(greetings - tlsUpgrades === connections, `the batch used ${greetings - tlsUpgrades} connections, expected ${connections}`);

  // The messages are 7-bit ASCII: no MAIL FROM declares them 8BITMIME.
  const eightBit = transcript.filter((l) => /^C: MAIL FROM:.*BODY=8BITMIME/i.test(l));
  expect(eightBit.length === 0, `7-bit messages declared BODY=8BITMIME: ${eightBit.join(' | ')}`);
  // A reply is reported as the server wrote it: one space after the code, even for multi-line replies.
  for (const [i, r] of results.entries()) {
    if (r.status === 'fulfilled') expect(!/^\d{3}  /.test(r.value.response), `message ${i + 1}: response ${JSON.stringify(r.value.response)}`);
  }

  if (lockstep) {
    const early = commandsWrittenBeforeTheLastReply(transcript);
    expect(early.length === 0, `without PIPELINING, commands were written before the previous reply: ${early.join(' | ')}`);
  }

  // What the server delivered: wait for every delivery wasmtp reported, then
  // a little longer, so that a delivery it did not report is seen too.
  const expectedCount = results.reduce((n, r, i) => n + (r.status === 'fulfilled' ? wanted(i).length : 0), 0);
  const ours = () => server.deliveries().filter((d) => (d.headers.get('x-wasmtp-batch')?.[0] ?? '').startsWith(`${tag} `));
  const deadline = Date.now() + 20_000;
  while (ours().length < expectedCount && Date.now() < deadline) await sleep(50);
  await sleep(800);
  const delivered = ours();

  const byMessage = Array.from({ length: MESSAGES }, () => []);
  for (const d of delivered) {
    const i = Number(d.headers.get('x-wasmtp-batch')[0].split(' ')[1]);
    // Never under another message's envelope sender, never to another's recipient.
    expect(d.returnPath === sender(i), `message ${i + 1} was delivered under the envelope sender <${d.returnPath}>, not its own <${sender(i)}>`);
    expect(recipients(i).includes(d.recipient), `message ${i + 1} was delivered to <${d.recipient}>, not one of its recipients`);
    byMessage[i].push(d.recipient);
  }
  for (let i = 0; i < MESSAGES; i++) {
    const result = results[i];
    const got = byMessage[i].length ? byMessage[i].join(', ') : 'nothing';
    if (result.status === 'fulfilled') {
      expect(same(byMessage[i], wanted(i)), `message ${i + 1} was reported sent; the server delivered it to ${got}, expected once to each of ${wanted(i)}`);
    } else if (result.reason?.deliveryState !== 'unknown') {
      expect(byMessage[i].length === 0, `message ${i + 1} was reported ${result.reason?.deliveryState ?? 'failed'}, but the server delivered it to ${got}`);
    }
    // 'unknown': either way is honest; a delivery was still checked above for its sender.
  }

  if (problems.length) {
    assert.fail(
      `${problems.map((p) => `- ${p}`).join('\n')}` +
        `\n--- wasmtp's outcomes:\n${results.map((r, i) => `message ${i + 1}: ${describe(r)}`).join('\n')}` +
        `\n--- delivered (message: envelope sender → recipient):\n${delivered.map((d) => `${d.headers.get('x-wasmtp-batch')[0].split(' ')[1] * 1 + 1}: <${d.returnPath}> → <${d.recipient}>`).sort().join('\n')}` +
        `\n--- transcript:\n${transcript.join('\n')}\n--- server log (tail):\n${server.log()}`,
    );
  }
  return { results, transcript, delivered };
}

/**
 * Client lines of a one-connection transcript that were written while a
 * reply was still due. Message content ("<message body, N bytes>") goes
 * after a 354 and is not a command; "." is the end-of-data command.
 */
function commandsWrittenBeforeTheLastReply(transcript) {
  const early = [];
  let awaiting = null;
  for (const line of transcript) {
    if (line.startsWith('C: ')) {
      if (line.startsWith('C: <')) continue;
      if (awaiting) early.push(`${line.slice(3)} (before the reply to ${awaiting})`);
      awaiting = line.slice(3);
    } else if (/^S: \d{3}( |$)/.test(line)) {
      awaiting = null;
    }
  }
  return early;
}

/** The same addresses, in any order. */
function same(a, b) {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

function describe(result) {
  if (result.status === 'fulfilled') return `sent (${result.value.response})`;
  const e = result.reason;
  return `${e?.code ?? ''} ${e?.deliveryState ?? ''} retryable=${e?.retryable} — ${e?.message ?? e}`;
}
