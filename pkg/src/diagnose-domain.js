// diagnose({ domain }): the domain doctor. For a sending domain, looks up
// what the engine's DomainDoctor asks for (MX, the TXT records of SPF and
// its includes, DMARC, a DKIM selector, MTA-STS, TLS-RPT), fetches the
// MTA-STS policy over HTTPS, and tries one TCP connection to port 25 of the
// domain's first MX. Every finding, hint and the relay-or-direct verdict
// come from the engine (src/diagnose/domain.rs); this file only fetches.

import { createResolver } from './dns/index.js';
import { loadEngine } from './engine.js';
import { SmtpError } from './errors.js';
import { effectiveClientName } from './options.js';
import { addressOf, connectWithin, httpsGetPolicy, MAX_POLICY_BYTES, withTimeout } from './policy-fetch.js';
import { monotonicNow as now } from './util.js';

const OPTIONS = ['domain', 'dns', 'selector', 'message', 'tls', 'transport', 'timeouts', 'mxPort', 'mtaStsPort', 'clientName', 'fetchPolicy', 'onProgress'];
/** The port-25 probe and the policy fetch each get this long unless timeouts.connect says otherwise. */
const PROBE_TIMEOUT_MS = 5000;
/** SPF includes nest; evaluation stops at 10 lookups, the doctor looks a little further. */
const MAX_TXT_ROUNDS = 12;

/**
 * @param {object} options `{ domain, dns?, selector?, message?, tls?: { ca? }, transport?,
 *   timeouts?: { connect? }, mxPort?, mtaStsPort?, clientName?, fetchPolicy?, onProgress? }` (see index.d.ts)
 * @param {object} defaultTransport the runtime's transport
 */
export async function diagnoseDomain(options, defaultTransport) {
  const opts = checkOptions(options, defaultTransport);
  const engine = await loadEngine('doctor');
  const resolver = createResolver(opts.dns);
  const progress = (stage, detail) => {
    try {
      opts.onProgress?.({ stage, ...detail });
    } catch {}
  };
  const doctor = new engine.DomainDoctor(opts.domain);
  const records = { mx: null, txt: {}, mtaStsPolicy: null, port25: null, dkimSelector: null, ehloName: null };
  let diagnosis;
  try {
    const domain = doctor.domain;
    const selector = opts.selector ?? selectorFromMessage(engine, opts.message, domain);
    if (selector) {
      doctor.setDkimSelector(selector);
      records.dkimSelector = selector;
    }

    progress('dns', { name: domain, type: 'MX' });
    try {
      records.mx = await resolver.mx(domain);
      doctor.setMx(
        records.mx.map((r) => r.exchange),
        records.mx.map((r) => r.priority),
      );
    } catch (error) {
      doctor.setMxError(reason(error));
    }

    // The engine names what it needs next: SPF includes appear as records are learned.
    for (let round = 0; round < MAX_TXT_ROUNDS; round++) {
      const names = doctor.txtWanted();
      if (names.length === 0) break;
      await Promise.all(
        names.map(async (name) => {
          progress('dns', { name, type: 'TXT' });
          try {
            const list = await resolver.txt(name);
            records.txt[name] = list;
            doctor.addTxt(name, list);
          } catch (error) {
            doctor.addTxtError(name, reason(error));
          }
        }),
      );
    }

    const [policy, port25] = await Promise.all([
      doctor.wantsMtaStsPolicy ? fetchPolicy(domain, resolver, opts, progress) : null,
      probePort25(doctor.port25Target, resolver, opts, progress),
    ]);
    if (policy) {
      if (policy.text !== undefined) {
        records.mtaStsPolicy = policy.text;
        doctor.setMtaStsPolicy(policy.text);
      } else doctor.setMtaStsPolicyError(policy.error);
    }
    if (port25) {
      records.port25 = port25;
      doctor.setPort25(port25.host, port25.port, port25.reachable, port25.connectMs ?? 0, port25.detail ?? '');
    }

    // The name direct delivery would announce (the engine judges it).
    const ehloName = opts.clientName ?? (await effectiveClientName());
    if (ehloName !== undefined) {
      doctor.setEhloName(ehloName);
      records.ehloName = ehloName;
    }

    diagnosis = doctor.diagnose();
    return {
      domain,
      ok: diagnosis.ok,
      verdict: { mode: diagnosis.verdict, reason: diagnosis.verdictReason },
      findings: diagnosis.findings.map(findingObject),
      records,
    };
  } finally {
    diagnosis?.free();
    doctor.free();
  }
}

function checkOptions(options, defaultTransport) {
  const bad = (message, hint) => SmtpError.input(message, hint, 'dns');
  if (options === null || typeof options !== 'object') throw bad('diagnose needs an options object.', "pass { domain: 'example.com' }.");
  const unknown = Object.keys(options).filter((k) => !OPTIONS.includes(k) && options[k] !== undefined);
  if (unknown.length > 0) {
    throw bad(`diagnose({ domain }) has no option ${unknown.map((k) => `"${k}"`).join(', ')}.`, `the domain doctor takes ${OPTIONS.join(', ')}; host, ports and auth are for the server doctor (diagnose({ host })).`);
  }
  const { domain, selector, message, mxPort = 25, mtaStsPort = 443, tls = {}, timeouts = {} } = options;
  const isDomain = typeof domain === 'string' && /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)+\.?$/i.test(domain.trim());
  if (!isDomain) throw bad(`domain ${JSON.stringify(domain)} is not a domain name.`, "pass the domain of your From: address, e.g. domain: 'example.com'.");
  if (selector !== undefined && (typeof selector !== 'string' || !/^[a-z0-9_][a-z0-9_.-]*$/i.test(selector))) {
    throw bad(`selector ${JSON.stringify(selector)} is not a DKIM selector.`, "pass the s= of your DKIM-Signature, e.g. selector: 'mail2026'.");
  }
  if (message !== undefined && typeof message !== 'string' && !(message instanceof Uint8Array)) {
    throw bad('message must be the raw message, as a string or Uint8Array.', 'pass a message your server signed: its DKIM-Signature names the selector.');
  }
  for (const [name, port] of [['mxPort', mxPort], ['mtaStsPort', mtaStsPort]]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`${name} ${port} is not a TCP port.`, `${name} is for tests (or a provider on another port); leave it out for the standard port.`);
  }
  if (typeof tls !== 'object' || tls === null || Object.keys(tls).some((k) => k !== 'ca')) {
    throw bad('tls for diagnose({ domain }) takes only ca.', 'tls.ca: a PEM CA (or list) also trusted for the MTA-STS policy server.');
  }
  if (typeof timeouts !== 'object' || timeouts === null || Object.keys(timeouts).some((k) => k !== 'connect')) {
    throw bad('timeouts for diagnose({ domain }) takes only connect.', 'timeouts.connect: milliseconds for the port-25 probe and the policy fetch (default 5000).');
  }
  const timeout = timeouts.connect ?? PROBE_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout <= 0) throw bad(`timeouts.connect ${timeout} is not a number of milliseconds.`, 'e.g. timeouts: { connect: 3000 }.');
  const { clientName } = options;
  if (clientName !== undefined && (typeof clientName !== 'string' || clientName.length === 0 || /[\s\x00-\x1f\x7f]/.test(clientName))) {
    throw bad(`clientName ${JSON.stringify(clientName)} is not a host name.`, "pass the name this machine announces in EHLO, e.g. clientName: 'mail.example.com'.");
  }
  for (const name of ['onProgress', 'fetchPolicy']) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw bad(`${name} must be a function.`, `pass a function, or leave ${name} out.`);
  }
  const transport = options.transport ?? defaultTransport;
  if (!transport || typeof transport.connect !== 'function') throw bad('transport must have a connect method.', 'leave transport out to use the runtime default.');
  return { ...options, domain: domain.trim(), mxPort, mtaStsPort, ca: tls.ca, timeout, transport };
}

/** The selector of a signed message, when it signs for `domain`. */
function selectorFromMessage(engine, message, domain) {
  if (message === undefined) return undefined;
  const text = typeof message === 'string' ? message : new TextDecoder().decode(message.subarray(0, MAX_POLICY_BYTES));
  const found = engine.dkimSelectorInMessage(text);
  return found && found[1] === domain ? found[0] : undefined;
}

/** One TCP connection to port 25 (or mxPort) of `host`, closed at once. */
async function probePort25(host, resolver, opts, progress) {
  if (host === undefined) return null;
  const port = opts.mxPort;
  const result = { host, port, address: null, reachable: 'failed', connectMs: null, detail: null };
  progress('port25', { host, port });
  let ip;
  try {
    ip = await addressOf(resolver, host);
  } catch (error) {
    return { ...result, detail: reason(error) };
  }
  if (!ip) return { ...result, reachable: 'unresolved' };
  result.address = ip;
  const started = now();
  try {
    const socket = await connectWithin(opts.transport, { host: ip, port, tls: false, upgradable: false }, opts.timeout);
    socket.onData = () => {};
    socket.onClose = () => {};
    socket.close();
    return { ...result, reachable: 'open', connectMs: Math.round(now() - started) };
  } catch (error) {
    if (error === 'timeout') return { ...result, reachable: 'timeout' };
    const text = `${error?.code ?? ''} ${error?.message ?? error}`;
    const reachable = /refused|downstream server/i.test(text) ? 'refused' : /timed? ?out|ETIMEDOUT/i.test(text) ? 'timeout' : 'failed';
    return { ...result, reachable, detail: error?.message ?? String(error) };
  }
}

/**
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt: `{ text }` or `{ error }`.
 * The name is resolved through the doctor's resolver; the connection goes
 * through the transport (certificate verified against the system roots, or
 * tls.ca), or through `fetchPolicy` when given (a page, which has no TLS
 * for raw sockets).
 */
async function fetchPolicy(domain, resolver, opts, progress) {
  const host = `mta-sts.${domain}`;
  const url = `https://${host}/.well-known/mta-sts.txt`;
  progress('mta-sts', { url });
  try {
    const address = await addressOf(resolver, host);
    if (!address) return { error: `${host} does not resolve` };
    if (!opts.fetchPolicy) {
      return { text: await httpsGetPolicy({ transport: opts.transport, address, host, port: opts.mtaStsPort, ca: opts.ca, timeout: opts.timeout }) };
    }
    const text = await withTimeout(Promise.resolve(opts.fetchPolicy({ url, host, address, port: opts.mtaStsPort })), opts.timeout, () => 'timeout');
    if (typeof text !== 'string') return { error: 'fetchPolicy did not resolve with the policy text' };
    if (text.length > MAX_POLICY_BYTES) return { error: 'the policy is larger than 64 KiB' };
    return { text };
  } catch (error) {
    return { error: error === 'timeout' ? 'no answer in time' : reason(error) };
  }
}

/** The text a finding quotes for a failed lookup or fetch. */
function reason(error) {
  if (error instanceof SmtpError) return error.detail.replace(/\.$/, '');
  return String(error?.message ?? error).replace(/\.$/, '');
}

function findingObject(f) {
  try {
    return { port: null, severity: f.severity, code: f.code, message: f.message, hint: f.hint ?? null };
  } finally {
    f.free();
  }
}
