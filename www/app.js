// The doctor page: reads the form, runs diagnose() from the browser build
// of wasmtp through the local bridge, and shows the live transcript (each
// line with the engine's explanation) and the report. The second tab runs
// the domain doctor, diagnose({ domain }), with DNS over HTTPS through this
// page's server (/dns-query) and the MTA-STS policy fetched by it
// (/mta-sts). Every verdict is the engine's; this only renders.
// Server-controlled text goes in with textContent, never as HTML.
// Query parameters for tests only: ?mxPort=N&mtaStsPort=N replace 25 and 443.

import { diagnose } from '/pkg/src/browser.js';

const $ = (selector) => document.querySelector(selector);
const form = $('#doctor');
const SYMBOL = { ok: '✓', info: 'ℹ', warning: '⚠', error: '✗' };

// A fixed bridge (?bridge=ws://...), or a token per target from the page's server (www/serve.mjs).
const fixedBridge = new URLSearchParams(location.search).get('bridge');
const bridge =
  fixedBridge ??
  (async ({ host, port }) => {
    const response = await fetch('/bridge', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ host, port }),
    });
    if (!response.ok) throw new Error(`the bridge was refused for ${host}:${port} (${await response.text()})`);
    return (await response.json()).url;
  });

/** `el('li', { class: 'x' }, 'text', child)`: children as text or nodes. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const host = String(data.get('host')).trim();
  const port = Number(data.get('port')) || undefined;
  const security = String(data.get('security')) || undefined;
  const user = String(data.get('user')).trim();
  const pass = String(data.get('pass'));
  const ca = String(data.get('ca')).trim();
  const probes = data.get('standard') ? [465, 587, 25] : [];
  if (port) probes.push({ port, security });
  if (probes.length === 0) probes.push(587);

  reset();
  $('#run').disabled = true;
  const running = new Map();
  const status = () => {
    $('#status').textContent = running.size > 0 ? `probing ${[...running.values()].join(', ')}…` : 'judging…';
  };
  form.dataset.state = 'running';
  try {
    const report = await diagnose({
      host,
      probes,
      auth: user ? { user, pass } : undefined,
      tls: ca ? { ca } : undefined,
      bridge,
      onTranscript: addLine,
      onProgress: (p) => {
        const key = `${p.port}/${p.security}`;
        if (p.stage === 'start') running.set(key, `${p.port} (${p.security})`);
        else running.delete(key);
        status();
      },
    });
    render(report);
    $('#status').textContent = report.ok ? 'done' : 'done: no working configuration found';
  } catch (error) {
    $('#status').textContent = `failed: ${error.message}`;
  } finally {
    $('#run').disabled = false;
    form.dataset.state = 'done';
  }
});

function reset() {
  for (const id of ['#verdict', '#findings-section', '#ports-section']) $(id).hidden = true;
  $('#findings').replaceChildren();
  $('#ports').replaceChildren();
  $('#transcript tbody').replaceChildren();
  $('#transcript-section').hidden = false;
}

const ARROW = { C: 'C →', S: '← S', tls: 'TLS' };

function addLine({ port, dir, text, note }) {
  $('#transcript tbody').append(
    el('tr', { class: `dir-${dir}` }, el('td', {}, port), el('td', { class: 'dir' }, ARROW[dir] ?? dir), el('td', { class: 'line' }, text), el('td', { class: 'note' }, note)),
  );
}

function render(report) {
  const verdict = $('#verdict');
  const r = report.recommended;
  verdict.className = r ? (r.needsCa ? 'warning' : 'ok') : 'error';
  verdict.replaceChildren(
    r
      ? el(
          'p',
          {},
          el('strong', {}, `Use port ${r.port} with security '${r.security}'.`),
          ` ${r.reason}`,
        )
      : el('p', {}, el('strong', {}, 'No working configuration found.'), ' The findings say why, port by port.'),
  );
  verdict.dataset.port = r?.port ?? '';
  verdict.dataset.security = r?.security ?? '';
  verdict.hidden = false;

  $('#findings').replaceChildren(
    ...report.findings.map((f) =>
      el(
        'li',
        { class: f.severity, 'data-code': f.code, 'data-port': f.port ?? '' },
        el('span', { class: 'symbol', title: f.severity }, SYMBOL[f.severity]),
        el('span', { class: 'port' }, f.port ?? 'host'),
        el('code', {}, f.code),
        el('span', { class: 'message' }, f.message),
        f.hint ? el('div', { class: 'hint' }, '→ ', f.hint) : null,
      ),
    ),
  );
  $('#findings-section').hidden = false;

  $('#ports').replaceChildren(...report.ports.map(portCard));
  $('#json').textContent = JSON.stringify(report, null, 2);
  $('#ports-section').hidden = false;
}

function portCard(p) {
  const rows = [];
  const row = (name, ...value) => rows.push(el('dt', {}, name), el('dd', {}, ...value));
  row('TCP', p.reachable === 'open' ? `open (connected in ${p.connectMs} ms)` : p.reachable);
  if (p.greeting) row('Greeting', el('code', {}, p.greeting));
  if (p.tls) {
    row('TLS', `${p.tls.version} ${p.tls.cipher ?? ''}, certificate ${p.tls.authorized ? 'verified' : `NOT verified (${p.tls.authorizationError ?? 'unknown reason'})`}`);
  }
  const c = p.certificate;
  if (c) {
    row(
      'Certificate',
      el('div', {}, 'subject ', el('code', {}, c.subject)),
      el('div', {}, 'names ', el('code', {}, c.altNames.join(', ') || '(none)'), c.nameMatches ? ' — match the host' : ' — do NOT match the host'),
      el('div', {}, 'issuer ', el('code', {}, c.issuer), c.selfSigned ? ' (self-signed)' : ''),
      el('div', {}, `valid ${c.validFrom} to ${c.validTo}${c.expired ? ' — EXPIRED or not yet valid' : ''}`),
      el('div', {}, 'SHA-256 ', el('code', { class: 'fingerprint' }, c.fingerprint256)),
    );
  }
  if (p.extensionsBeforeTls) row('EHLO before TLS', p.extensionsBeforeTls.join(', '));
  if (p.extensions) row(p.tls ? 'EHLO after TLS' : 'EHLO', p.extensions.join(', ') || '(none)');
  if (p.auth.offered.length > 0) {
    row('AUTH', `${p.auth.offered.join(' ')} (wasmtp can use: ${p.auth.usable.join(', ') || 'none'})`);
  }
  row('Login', p.auth.loginText);
  // Login outcomes are in the Login row and the findings.
  if (p.error && !['EAUTH', 'EAUTH_INSECURE', 'EAUTH_UNSUPPORTED'].includes(p.error.code)) {
    row('Ended with', el('code', {}, p.error.code), ` ${p.error.message}`);
  }
  return el('section', { class: 'port-card', 'data-port': p.port }, el('h3', {}, `Port ${p.port} — ${p.security} (${p.ms} ms)`), el('dl', {}, rows));
}

// ----- The sending domain

const tabs = { server: [$('#tab-server'), $('#server-tab')], domain: [$('#tab-domain'), $('#domain-tab')] };
function showTab(name) {
  for (const [key, [button, panel]] of Object.entries(tabs)) {
    button.setAttribute('aria-selected', String(key === name));
    panel.hidden = key !== name;
  }
}
$('#tab-server').addEventListener('click', () => showTab('server'));
$('#tab-domain').addEventListener('click', () => showTab('domain'));
if (location.hash === '#domain') showTab('domain');

const params = new URLSearchParams(location.search);
const testPort = (name) => (params.has(name) ? Number(params.get(name)) : undefined);

/** The policy, fetched by this page's server from the address the page resolved. */
async function fetchPolicy({ host, address, port }) {
  const response = await fetch('/mta-sts', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ host, address, port }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(text || `HTTP ${response.status}`);
  return text;
}

const domainForm = $('#domain-doctor');
domainForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(domainForm);
  const selector = String(data.get('selector')).trim() || undefined;
  const message = String(data.get('message')).trim() || undefined;
  $('#domain-verdict').hidden = true;
  $('#domain-findings-section').hidden = true;
  $('#domain-run').disabled = true;
  domainForm.dataset.state = 'running';
  try {
    const report = await diagnose({
      domain: String(data.get('domain')).trim(),
      selector,
      // The header is enough to find the selector; the body is not needed.
      message: message ? `${message.replace(/\r?\n/g, '\r\n')}\r\n\r\n` : undefined,
      dns: { doh: new URL('/dns-query', location.href).href },
      bridge,
      fetchPolicy,
      mxPort: testPort('mxPort'),
      mtaStsPort: testPort('mtaStsPort'),
      onProgress: (p) => {
        $('#domain-status').textContent = p.stage === 'dns' ? `looking up ${p.type} ${p.name}…` : p.stage === 'port25' ? `trying port ${p.port} of ${p.host}…` : `fetching ${p.url}…`;
      },
    });
    renderDomain(report);
    $('#domain-status').textContent = report.ok ? 'done' : 'done: some findings are errors';
  } catch (error) {
    $('#domain-status').textContent = `failed: ${error.message}`;
  } finally {
    $('#domain-run').disabled = false;
    domainForm.dataset.state = 'done';
  }
});

function renderDomain(report) {
  const verdict = $('#domain-verdict');
  const direct = report.verdict.mode === 'direct';
  verdict.className = direct ? 'ok' : 'warning';
  verdict.dataset.mode = report.verdict.mode;
  verdict.replaceChildren(el('p', {}, el('strong', {}, direct ? 'Direct delivery can work from here.' : 'Send through a relay.'), ` ${report.verdict.reason}`));
  verdict.hidden = false;
  $('#domain-findings').replaceChildren(
    ...report.findings.map((f) =>
      el(
        'li',
        { class: f.severity, 'data-code': f.code },
        el('span', { class: 'symbol', title: f.severity }, SYMBOL[f.severity]),
        el('code', {}, f.code),
        el('span', { class: 'message' }, f.message),
        f.hint ? el('div', { class: 'hint' }, '→ ', f.hint) : null,
      ),
    ),
  );
  $('#domain-json').textContent = JSON.stringify(report, null, 2);
  $('#domain-findings-section').hidden = false;
}
