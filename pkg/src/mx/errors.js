// The errors and per-recipient results of direct delivery (mx/client.js).

import { SmtpError } from '../errors.js';

/** A recipient's result without acceptance: { recipient, domain, status, host?, reply?, error }. */
export function failure(recipient, domain, status, error, host) {
  const reply = error.reply ? `${error.reply.code}${error.reply.enhancedCode ? ` ${error.reply.enhancedCode}` : ''} ${error.reply.lines.join(' ')}` : undefined;
  return { recipient, domain, status, host, reply, error };
}

export function mtaStsError(domain, why) {
  return new SmtpError({
    code: 'EMTASTS',
    phase: 'tls',
    message: `${domain} has an MTA-STS policy in enforce mode, and ${why}; nothing was sent there.`,
    hint: 'the receiving domain must fix its MX or certificates (or its policy); mail to it stays deferred until then.',
    retryable: true,
  });
}

export function noHostError(domain, why) {
  return new SmtpError({
    code: 'ENOHOST',
    phase: 'dns',
    message: `No mail host found for ${domain}: ${why}.`,
    hint: 'check the recipient\'s domain for typos; a domain without MX, A or AAAA records takes no mail.',
    retryable: true,
  });
}

export function unreachableError(domain, tried, last, port) {
  const blocked = port === 25 && ['ECONNECT', 'ETIMEDOUT'].includes(last.code);
  return new SmtpError({
    code: last.code,
    phase: last.phase,
    message: `No MX host of ${domain} could be reached (tried ${tried.join(', ')}); the last said: ${last.detail ?? last.message}`,
    hint: blocked
      ? 'outbound port 25 is often blocked by cloud and home providers (Cloudflare Workers always block it): send through a relay (host, port 587, auth) instead, or ask the provider to open it.'
      : last.hint,
    reply: last.reply,
    retryable: true,
    cause: last,
  });
}

/** send() rejects when no recipient was accepted: the one cause, or a summary. */
export function noneAccepted(outcome) {
  const errors = [...new Set(outcome.recipients.map((r) => r.error).filter(Boolean))];
  let error;
  if (errors.length === 1) error = errors[0];
  else {
    const lines = outcome.recipients.map((r) => `${r.recipient}: ${r.status}${r.reply ? ` (${r.reply})` : r.error ? ` (${r.error.code})` : ''}`);
    error = new SmtpError({
      code: 'ERECIPIENTS',
      phase: 'rcpt',
      message: `No recipient accepted the message: ${lines.join('; ')}.`,
      hint: 'see error.recipients for each recipient\'s host and reply; deferred ones may succeed later.',
      retryable: outcome.deferred.length > 0,
    });
  }
  error.recipients = outcome.recipients;
  error.accepted = outcome.accepted;
  error.rejected = outcome.rejected;
  error.deferred = outcome.deferred;
  return error;
}
