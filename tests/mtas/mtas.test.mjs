// A refused transaction must never spill into the next message, on every
// real MTA: Exim 4.96, Dovecot 2.3 LMTP, OpenSMTPD 6.8 and Postfix 3.7, each
// a private instance on 127.0.0.1 started and stopped here by PID.
//
// The pattern (batch.mjs): ten messages sent at once through one pooled
// connection, each from a different envelope sender, message 4 made to fail
// (its only recipient does not exist, or the server refuses its MAIL, DATA
// or data). Every valid message must be delivered with its own sender; the
// failing one must fail with the server's own reply and never be delivered.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeCertificates, POSTFIX_PASS, POSTFIX_USER, startPostfix } from '../../pkg/test/helpers/postfix.js';
import { FOURTH, sendAndCheckBatch } from './batch.mjs';
import { parseHeaders, startServer } from './servers.mjs';

const sender = (i) => `s${i + 1}@senders.test`;
/** Message 4's sender carries `prefix`, which the Exim instance's ACLs act on. */
const fourthSender = (prefix) => (i) => (i === FOURTH ? `${prefix}-s${i + 1}@senders.test` : sender(i));

describe('Exim 4.96 (PIPELINING, CHUNKING; ACLs refuse message 4 at each step)', () => {
  let exim;
  before(async () => {
    exim = await startServer('exim');
  });
  after(() => exim?.stop());

  const rcpt = (i) => [`r${i + 1}@exim.test`];
  const noSuchFourth = (i) => (i === FOURTH ? [`nouser${i + 1}@exim.test`] : rcpt(i));
  const plain = (port) => ({ port, security: 'none' });

  test('message 4 has no valid recipient: BDAT, pipelined', () =>
    sendAndCheckBatch(exim, { client: plain(exim.port), sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));

  test('message 4 has no valid recipient: DATA (no CHUNKING offered), pipelined', () =>
    sendAndCheckBatch(exim, { client: plain(exim.dataPort), sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));

  test('message 4 has no valid recipient: BDAT, no PIPELINING offered (one command per round trip)', () =>
    sendAndCheckBatch(exim, { client: plain(exim.noPipeliningPort), lockstep: true, sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));

  test('message 4 has no valid recipient: DATA, no PIPELINING offered (one command per round trip)', () =>
    sendAndCheckBatch(exim, { client: plain(exim.noPipeliningDataPort), lockstep: true, sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));

  test('a 5xx on the final BDAT of message 4, no PIPELINING', () =>
    sendAndCheckBatch(exim, { client: plain(exim.noPipeliningPort), lockstep: true, sender: fourthSender('reject-body'), recipients: rcpt, failing: { [FOURTH]: { code: 550 } } }));

  test('a 4xx on MAIL for message 4', () =>
    sendAndCheckBatch(exim, { client: plain(exim.port), sender: fourthSender('tempfail'), recipients: rcpt, failing: { [FOURTH]: { code: 451 } } }));

  test('a 4xx on MAIL for message 4, DATA', () =>
    sendAndCheckBatch(exim, { client: plain(exim.dataPort), sender: fourthSender('tempfail'), recipients: rcpt, failing: { [FOURTH]: { code: 451 } } }));

  test('a 5xx on the final BDAT of message 4', () =>
    sendAndCheckBatch(exim, { client: plain(exim.port), sender: fourthSender('reject-body'), recipients: rcpt, failing: { [FOURTH]: { code: 550 } } }));

  test('a 5xx after the data of message 4 (DATA)', () =>
    sendAndCheckBatch(exim, { client: plain(exim.dataPort), sender: fourthSender('reject-body'), recipients: rcpt, failing: { [FOURTH]: { code: 550 } } }));

  test('the server refuses the DATA command of message 4', () =>
    sendAndCheckBatch(exim, { client: plain(exim.dataPort), sender: fourthSender('refuse-data'), recipients: rcpt, failing: { [FOURTH]: { code: 554 } } }));

  test('the server refuses the DATA command of message 4, no PIPELINING', () =>
    sendAndCheckBatch(exim, { client: plain(exim.noPipeliningDataPort), lockstep: true, sender: fourthSender('refuse-data'), recipients: rcpt, failing: { [FOURTH]: { code: 554 } } }));
});

describe('Dovecot 2.3 LMTP (LHLO, PIPELINING, CHUNKING; recipients checked against its userdb)', () => {
  let dovecot;
  before(async () => {
    dovecot = await startServer('dovecot');
  });
  after(() => dovecot?.stop());

  const lmtp = () => ({ port: dovecot.port, security: 'none', lmtp: true });

  test('message 4 has no valid recipient (unknown user)', () =>
    sendAndCheckBatch(dovecot, {
      client: lmtp(),
      sender,
      recipients: (i) => [i === FOURTH ? `nobody${i + 1}@lmtp.test` : `user${i}@lmtp.test`],
      failing: { [FOURTH]: { code: 550 } },
    }));

  test('two recipients per message, message 4 with one unknown and one known user', () =>
    sendAndCheckBatch(dovecot, {
      client: lmtp(),
      sender,
      // Message 4 still goes to user3: only its unknown recipient is refused.
      recipients: (i) => (i === FOURTH ? [`nobody${i + 1}@lmtp.test`, `user${i}@lmtp.test`] : [`user${i}@lmtp.test`, `user${(i + 1) % 10}@lmtp.test`]),
      failing: {},
      refusedRecipients: { [FOURTH]: [`nobody${FOURTH + 1}@lmtp.test`] },
    }));

  test("message 4's only recipient has a full mailbox (552 5.2.2 after its data)", () =>
    sendAndCheckBatch(dovecot, {
      client: lmtp(),
      sender,
      recipients: (i) => [i === FOURTH ? 'full@lmtp.test' : `user${i}@lmtp.test`],
      // A full mailbox is about the recipient, not the message's size.
      failing: { [FOURTH]: { code: 552, errorCode: 'ERECIPIENTS' } },
    }));
});

describe('OpenSMTPD 6.8 (plaintext, no PIPELINING, DATA)', () => {
  // Debian 12's OpenSMTPD fails server-side TLS handshakes under OpenSSL 3
  // (upstream issues #1171 and #1239): the instance offers no STARTTLS and
  // the batch runs over plaintext.
  let smtpd;
  before(async () => {
    smtpd = await startServer('opensmtpd');
  });
  after(() => smtpd?.stop());

  test('message 4 has no valid recipient, one command per round trip', () =>
    sendAndCheckBatch(smtpd, {
      client: { port: smtpd.port, security: 'none' },
      lockstep: true,
      sender,
      recipients: (i) => [i === FOURTH ? `nosuch${i + 1}@smtpd.test` : `user${i}@smtpd.test`],
      failing: { [FOURTH]: { code: 524 } },
    }));
});

describe('Postfix 3.7 (STARTTLS, AUTH, PIPELINING, CHUNKING)', () => {
  let certs;
  let postfix;
  let server;
  before(async () => {
    certs = makeCertificates();
    postfix = await startPostfix(certs);
    server = postfixDeliveries(postfix);
  });
  after(async () => {
    await postfix?.stop();
    certs?.remove();
  });

  const submission = (port) => ({
    host: 'localhost',
    port,
    security: 'starttls',
    tls: { ca: certs.ca },
    auth: { user: POSTFIX_USER, pass: POSTFIX_PASS },
  });
  const noSuchFourth = (i) => [i === FOURTH ? `reject-${i + 1}@y.test` : `r${i + 1}@y.test`];

  test('message 4 has no valid recipient: BDAT', () =>
    sendAndCheckBatch(server, { client: submission(postfix.port), sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));

  test('message 4 has no valid recipient: DATA (no CHUNKING offered)', () =>
    sendAndCheckBatch(server, { client: submission(postfix.dataPort), sender, recipients: noSuchFourth, failing: { [FOURTH]: { code: 550 } } }));
});

/**
 * The private Postfix's deliveries (pkg/test/helpers/postfix.js): its pipe
 * transport writes spool/<queue id>.meta with the envelope (sender=,
 * recipient=) beside the message; one record per recipient.
 */
function postfixDeliveries(postfix) {
  return {
    log: () => postfix.maillog().slice(-4000),
    deliveries() {
      const records = [];
      for (const name of readdirSync(postfix.spool)) {
        // Not save-message.sh's temporary files (".<queue id>.<pid>.meta").
        if (!name.endsWith('.meta') || name.startsWith('.')) continue;
        const meta = readFileSync(join(postfix.spool, name), 'utf8').split('\n');
        const field = (key) => meta.filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
        const headers = parseHeaders(readFileSync(join(postfix.spool, name.replace(/\.meta$/, '.eml'))));
        for (const recipient of field('recipient')) records.push({ headers, returnPath: field('sender')[0], recipient });
      }
      return records;
    },
  };
}
