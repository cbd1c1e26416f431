// The outbox's retry policy: what one attempt's outcome makes of a record.
// The engine has already classified the failure (`resendSafe`: nothing of
// the message was taken and the cause is transient; `deliveryState`); this
// file only turns that into queued-again or final.

import { SmtpError } from '../errors.js';

export const RETRY_DEFAULTS = Object.freeze({
  /** Attempts in all (the first one included) before a message is `failed`. */
  maxAttempts: 8,
  /** A message not sent this long after it was enqueued is `failed` (ms). */
  maxAge: 2 * 24 * 3600_000,
  /** The delay before the second attempt (ms); it doubles (`factor`) each time. */
  initialDelay: 30_000,
  factor: 2,
  /** The delay never exceeds this (ms). */
  maxDelay: 3600_000,
  /** Part of each delay chosen at random (0: none, 1: anywhere from 0 to the delay). */
  jitter: 0.5,
});

/** The policy with defaults filled in; refuses nonsense up front. */
export function retryPolicy(given = {}) {
  const policy = { ...RETRY_DEFAULTS };
  for (const [key, value] of Object.entries(given ?? {})) {
    if (value === undefined) continue;
    if (!(key in RETRY_DEFAULTS)) {
      throw SmtpError.input(`retry.${key} is not an outbox retry option.`, `use ${Object.keys(RETRY_DEFAULTS).join(', ')}.`);
    }
    policy[key] = value;
  }
  const positive = (key, min) => {
    if (typeof policy[key] !== 'number' || !Number.isFinite(policy[key]) || policy[key] < min) {
      throw SmtpError.input(`retry.${key} must be a number of at least ${min}.`, `pass for example retry: { ${key}: ${RETRY_DEFAULTS[key]} }.`);
    }
  };
  positive('maxAttempts', 1);
  positive('maxAge', 0);
  positive('initialDelay', 0);
  positive('factor', 1);
  positive('maxDelay', 0);
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw SmtpError.input('retry.jitter must be between 0 and 1.', 'pass for example retry: { jitter: 0.5 }.');
  }
  return policy;
}

/** The back-off before attempt `attempts + 1` (ms), with jitter. */
export function backoff(policy, attempts, random = Math.random) {
  const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** Math.max(0, attempts - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}

/** An error as stored in a record (plain data, no transcript). */
export function storedError(error) {
  if (error instanceof SmtpError) {
    return {
      code: error.code,
      phase: error.phase,
      message: error.detail ?? error.message,
      hint: error.hint,
      retryable: error.retryable,
      deliveryState: error.deliveryState,
      resendSafe: error.resendSafe,
      reply: error.reply,
    };
  }
  return {
    code: 'EINTERNAL',
    phase: 'data',
    message: String(error?.message ?? error),
    retryable: true,
    deliveryState: 'not-sent',
    resendSafe: true,
  };
}

/** The server's reply as one line of text. */
export function replyText(reply) {
  if (!reply) return undefined;
  return `${reply.code} ${(reply.lines ?? []).join(' / ')}`.trim();
}

/**
 * The record after a failed attempt: `deferred` (tried again later),
 * `failed` (dead letter) or `unknown` (waits for a decision).
 * @param {object} record the record of the attempt (attempts already counted)
 * @param {object} error  the stored error (see storedError)
 * @param {{policy: object, atLeastOnce: boolean, now: number}} ctx
 */
export function afterFailure(record, error, { policy, atLeastOnce, now }) {
  const next = { ...record, error, reply: replyText(error.reply) ?? record.reply, updatedAt: now };
  if (error.deliveryState === 'unknown' && !atLeastOnce) return { ...next, state: 'unknown', nextAttemptAt: undefined };
  // Again when the engine says a resend is safe, or (at-least-once) when
  // the server may have it: a duplicate is then preferred to a loss.
  const again = error.resendSafe || error.deliveryState === 'unknown';
  if (!again) return { ...next, state: 'failed', nextAttemptAt: undefined };
  return scheduleRetry(next, policy, now);
}

/**
 * Queues `record` for another attempt after its back-off (or `delay`),
 * unless the attempts or the age are used up: then `failed`, naming why.
 */
export function scheduleRetry(record, policy, now, delay) {
  const used = record.attempts - (record.attemptsBefore ?? 0);
  const since = record.since ?? record.createdAt;
  const at = now + (delay ?? backoff(policy, used));
  if (used >= policy.maxAttempts) {
    return giveUp(record, now, `gave up after ${used} attempt${used === 1 ? '' : 's'} (retry.maxAttempts is ${policy.maxAttempts})`);
  }
  if (at - since > policy.maxAge) {
    return giveUp(record, now, `gave up: the next attempt would come later than retry.maxAge (${policy.maxAge} ms) after the message was enqueued`);
  }
  return { ...record, state: 'deferred', nextAttemptAt: at, updatedAt: now };
}

/** A message found older than maxAge when its turn came. */
export function expired(record, policy, now) {
  return giveUp(record, now, `gave up: the message is older than retry.maxAge (${policy.maxAge} ms)`);
}

function giveUp(record, now, why) {
  const last = record.error;
  return {
    ...record,
    state: 'failed',
    nextAttemptAt: undefined,
    updatedAt: now,
    error: {
      ...(last ?? { code: 'EEXPIRED', phase: 'mail', retryable: false, deliveryState: 'not-sent' }),
      message: last ? `${why}; the last attempt failed: ${last.message}` : `${why}.`,
      retryable: false,
      exhausted: true,
    },
  };
}
