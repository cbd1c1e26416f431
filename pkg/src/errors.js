// SmtpError: every failure of the package. Its fields are decided by the
// Rust engine (code, phase, message, hint, fix, reply, retryable,
// resendSafe, deliveryState);
// JS only copies them and adds the transcript of the connection.

export class SmtpError extends Error {
  /**
   * @param {object} fields
   * @param {string} fields.code        stable code, e.g. "EAUTH_INSECURE"
   * @param {string} fields.phase       e.g. "auth"
   * @param {string} fields.message     what was tried and what happened
   * @param {string} [fields.hint]      the most likely fix
   * @param {{code:number, enhancedCode?:string, lines:string[]}} [fields.reply]
   * @param {boolean} [fields.retryable]
   * @param {"not-sent"|"unknown"} [fields.deliveryState]
   * @param {boolean} [fields.resendSafe] sending again cannot duplicate the message and may succeed
   * @param {{option:string, value?:string|number}[]} [fields.fix] the options the hint names
   * @param {{dir:string, text:string}[]} [fields.transcript]
   * @param {unknown} [fields.cause]
   */
  constructor({ code, phase, message, hint, fix = [], reply, retryable = false, deliveryState = 'not-sent', resendSafe = false, transcript, cause }) {
    // The message alone must teach the fix: logs often print only `err.message`.
    super(`${code} (${phase}): ${message}${hint ? ` Hint: ${hint}` : ''}`, cause === undefined ? undefined : { cause });
    this.name = 'SmtpError';
    this.code = code;
    this.phase = phase;
    this.hint = hint;
    this.fix = fix;
    this.reply = reply;
    this.retryable = retryable;
    this.deliveryState = deliveryState;
    this.resendSafe = resendSafe;
    this.transcript = transcript;
    /** The engine's sentence without code, phase or hint. */
    this.detail = message;
  }

  /** Copies an engine error (a wasm `EngineError`) and frees it. */
  static fromEngine(engineError, transcript) {
    try {
      const replyCode = engineError.replyCode;
      return new SmtpError({
        code: engineError.code,
        phase: engineError.phase,
        message: engineError.message,
        hint: engineError.hint,
        fix: engineError.fix.map(parseFix),
        reply:
          replyCode === undefined
            ? undefined
            : { code: replyCode, enhancedCode: engineError.replyEnhancedCode, lines: engineError.replyLines },
        retryable: engineError.retryable,
        deliveryState: engineError.deliveryState,
        resendSafe: engineError.resendSafe,
        transcript,
      });
    } finally {
      engineError.free();
    }
  }

  /** An `EINPUT` error for a caller mistake found before the engine saw it. */
  static input(message, hint, phase = 'mail') {
    return new SmtpError({ code: 'EINPUT', phase, message, hint });
  }
}

/** `"security=tls"` → `{ option: 'security', value: 'tls' }`; a port's value is a number. */
export function parseFix(text) {
  const at = text.indexOf('=');
  if (at < 0) return { option: text };
  const option = text.slice(0, at);
  const value = text.slice(at + 1);
  return { option, value: option === 'port' ? Number(value) : value };
}

/** The engine's text form of a fix (the inverse of parseFix). */
export function fixText({ option, value }) {
  return value === undefined ? option : `${option}=${value}`;
}

/** True for errors the wasm bindings throw (`EngineError` instances). */
export function isEngineError(value) {
  return value !== null && typeof value === 'object' && typeof value.code === 'string' && typeof value.free === 'function' && 'deliveryState' in value;
}

/** Turns whatever a wasm call threw into an SmtpError (engine errors keep their fields). */
export function toSmtpError(thrown, transcript) {
  if (thrown instanceof SmtpError) return thrown;
  if (isEngineError(thrown)) return SmtpError.fromEngine(thrown, transcript);
  throw thrown; // a bug, not an SMTP failure: let it surface as is
}
