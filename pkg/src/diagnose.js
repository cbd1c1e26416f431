// diagnose(): the connection doctor. Probes a host's SMTP ports at once
// (465, 587, 25 and any others given), each with one ordinary session and
// short time-outs, and explains what works, what does not, and what to use.
//
// JS only runs the probes and moves facts: the engine's `Probe` reads what
// each session learned straight from its engine connection (greeting,
// EHLO before and after TLS, TLS, the certificate TLS inside wasm saw); the
// host adds what only it knows (connect time, the certificate its own TLS
// saw, the error, the login). Every finding, hint and the recommendation
// come from the engine's `Doctor` (src/diagnose.rs), so the CLI, the web
// page and every runtime say the same.
//
// Probes connect with certificate verification off, to learn the
// certificate of a server nobody trusts yet; the session then reports
// authorized: false and the engine never sends credentials over it.

import { diagnoseDomain } from './diagnose-domain.js';
import { hasWasmSource, loadEngine } from './engine.js';
import { fixText, parseFix, SmtpError, toSmtpError } from './errors.js';
import { connectionToken } from './oauth2.js';
import { engineOptions, normalizeOptions } from './options.js';
import { Session } from './session.js';
import { monotonicNow as now } from './util.js';

/** The ports probed unless `probes` replaces them. */
export const DEFAULT_PORTS = Object.freeze([465, 587, 25]);

/** Short time-outs: a probe that hangs says enough. */
const PROBE_TIMEOUTS = Object.freeze({ connect: 5000, tlsHandshake: 5000, greeting: 5000, command: 8000 });

/**
 * @param {object} options `{ host, ports?, probes?, auth?, tls?, timeouts?,
 *   clientName?, transport?, proxy?, localAddress?, onProgress?, onTranscript? }` (see index.d.ts)
 * @param {object} defaultTransport the runtime's transport
 * @returns {Promise<object>} the report: `{ host, ok, recommended, findings, ports }`
 */
export async function diagnose(options, defaultTransport) {
  // diagnose({ domain }): the domain doctor (diagnose-domain.js).
  if (options?.domain !== undefined) {
    requireDoctorBuild();
    return diagnoseDomain(options, defaultTransport);
  }
  const { ports = [], probes, onProgress, onTranscript, timeouts, ...rest } = options ?? {};
  // allowInsecureAuth is never honoured: a probe may run over a link nobody verified.
  const opts = normalizeOptions(
    { ...rest, allowInsecureAuth: false, pool: undefined, onTranscript: undefined, timeouts: { ...PROBE_TIMEOUTS, ...timeouts } },
    defaultTransport,
  );
  requireDoctorBuild();
  const engine = await loadEngine('doctor');
  const plan = probePlan(probes ?? [...DEFAULT_PORTS, ...ports]);
  const hooks = { onProgress: safe(onProgress), onTranscript: safe(onTranscript) };

  // Every port at once; a port mix-up is followed by one more probe of that port.
  const perPort = await Promise.all(
    plan.map(async (first) => {
      const done = [await runProbe(engine, opts, first, hooks)];
      const next = done[0].probe.followUp;
      const planned = plan.some((p) => p.port === first.port && p.security === next);
      if (next !== undefined && !planned) done.push(await runProbe(engine, opts, { port: first.port, security: next }, hooks));
      return done;
    }),
  );
  const runs = perPort.flat();

  const doctor = new engine.Doctor(opts.host);
  let diagnosis;
  try {
    // Every probe stopped at the proxy (unreachable, credentials refused):
    // nothing was learned about the server, and the proxy is what to fix.
    if (runs.every((run) => run.error?.code === 'EPROXY')) throw runs[0].error;
    for (const run of runs) doctor.add(run.probe);
    diagnosis = doctor.diagnose();
    return {
      host: opts.host,
      ok: diagnosis.ok,
      recommended:
        diagnosis.recommendedPort === undefined
          ? null
          : {
              port: diagnosis.recommendedPort,
              security: diagnosis.recommendedSecurity,
              needsCa: diagnosis.recommendedNeedsCa,
              reason: diagnosis.recommendedReason,
            },
      findings: diagnosis.findings.map(findingObject),
      ports: runs.map(portReport),
    };
  } finally {
    diagnosis?.free();
    doctor.free();
    for (const run of runs) run.probe.free();
  }
}

function requireDoctorBuild() {
  if (!hasWasmSource('doctor')) {
    throw SmtpError.input(
      'diagnose needs the doctor build of the engine, which this entry point does not load.',
      "run it from Node, Deno or Bun (import { diagnose } from 'wasmtp'), with `npx wasmtp doctor <host>`, or in the web page (`npx wasmtp doctor --web`).",
      'connect',
    );
  }
}

/** `[465, { port: 2525, security: 'starttls' }, ...]` → unique `{ port, security? }`. */
function probePlan(list) {
  const seen = new Set();
  const plan = [];
  for (const item of list) {
    const { port, security } = typeof item === 'object' && item !== null ? item : { port: item };
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw SmtpError.input(`port ${port} is not a TCP port.`, 'pass ports as numbers, e.g. ports: [2525].', 'connect');
    }
    const key = `${port}/${security ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    plan.push({ port, security });
  }
  return plan;
}

/** One probe: an ordinary session that stops after EHLO / AUTH. */
async function runProbe(engine, opts, { port, security }, { onProgress, onTranscript }) {
  const inEngine = opts.tls.engine === 'wasm';
  let probe;
  try {
    probe = new engine.Probe(opts.tls.servername ?? opts.host, port, security);
  } catch (thrown) {
    throw toSmtpError(thrown);
  }
  // Each transcript line comes with the engine's one-sentence explanation.
  const explainer = new engine.TranscriptExplainer();
  security = probe.security;
  onProgress({ port, security, stage: 'start' });
  const started = now();
  let socket = null;
  const transport = {
    async connect(args) {
      try {
        socket = await opts.transport.connect(args);
      } catch (error) {
        // A failed implicit-TLS handshake still means the port answered.
        if (error?.tlsHandshake) probe.setConnected(now() - started);
        throw error;
      }
      probe.setConnected(now() - started);
      return socket;
    },
  };
  const inspect = (conn) => {
    if (inEngine) {
      probe.observeSecure(conn, Date.now());
      return;
    }
    probe.observe(conn);
    const cert = socket?.peerCertificate;
    if (cert?.der) probe.setCertificate(cert.der, cert.sha256 ?? '', Date.now());
  };

  let error = null;
  let authMethod = null;
  let session = null;
  try {
    const { token, renew } = await connectionToken(opts);
    const built = engineOptions(engine, { ...opts, port, security, currentAccessToken: token });
    try {
      // Verification off, to see any certificate; credentials stay withheld there.
      const tls = { ...built.target.tls, rejectUnauthorized: false, acceptUnverifiedForDiagnosis: inEngine };
      session = new Session({
        engine,
        engineOptions: built.options,
        target: { ...built.target, tls },
        transport,
        onTranscript: ({ dir, text }) => onTranscript({ port, security, dir, text, note: explainer.explain(dir, text) }),
        inspect,
        renewAccessToken: renew,
      });
    } finally {
      built.options.free();
    }
    const info = await session.ready;
    authMethod = info.authMethod;
    if (authMethod) probe.setLogin(authMethod);
    await session.quit();
  } catch (thrown) {
    error = thrown instanceof SmtpError ? thrown : toSmtpError(thrown);
    probe.setError(error.code, error.phase, error.detail, error.hint, error.fix.map(fixText), error.reply?.code, error.reply?.lines ?? []);
  }
  await session?.closed;
  explainer.free();
  const ms = Math.round(now() - started);
  onProgress({ port, security, stage: 'done', reachable: probe.reachability, error: error?.code ?? null, ms });
  return { probe, error, authMethod, ms };
}

/** The facts of one probe, as a plain object. */
function portReport({ probe: p, error, authMethod, ms }) {
  return {
    port: p.port,
    security: p.security,
    reachable: p.reachability,
    connectMs: p.connectMs === undefined ? null : Math.round(p.connectMs),
    greeting: p.greeting ?? null,
    tls:
      p.tlsVersion === undefined
        ? null
        : { version: p.tlsVersion, cipher: p.tlsCipher ?? null, authorized: p.tlsAuthorized, authorizationError: p.tlsAuthorizationError ?? null },
    certificate: p.hasCertificate
      ? {
          subject: p.certSubject,
          altNames: p.certAltNames,
          issuer: p.certIssuer,
          validFrom: p.certValidFrom,
          validTo: p.certValidTo,
          selfSigned: p.certSelfSigned,
          nameMatches: p.certNameMatches,
          expired: p.certExpired,
          fingerprint256: p.certFingerprint256,
        }
      : null,
    extensionsBeforeTls: p.extensionsBeforeTls ?? null,
    extensions: p.extensions ?? null,
    auth: { offered: p.authOffered, usable: p.authUsable, login: p.login, loginText: p.loginText, method: authMethod ?? null },
    error: error ? { code: error.code, phase: error.phase, message: error.detail, hint: error.hint ?? null, fix: error.fix } : null,
    ms,
  };
}

function findingObject(f) {
  try {
    return { port: f.port ?? null, severity: f.severity, code: f.code, message: f.message, hint: f.hint ?? null, fix: f.fix.map(parseFix) };
  } finally {
    f.free();
  }
}

/** A callback that cannot break the probes. */
function safe(fn) {
  return typeof fn === 'function'
    ? (value) => {
        try {
          fn(value);
        } catch {}
      }
    : () => {};
}
