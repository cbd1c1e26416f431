// The script format of the fake-server kit: the engine-level format of
// src/testkit.rs (`S: line`, `C: line`, `TLS`, `WAIT ms`, `EOF`, `# comment`),
// extended for real sockets. One step a line:
//
//   S: 250 ok              the server sends this line (CRLF added; text taken literally)
//   S+ 220 partial\r\n     the server sends these bytes, no CRLF added; escapes:
//                          \r \n \t \0 \\ \xHH
//   C: EHLO client.test    the client must send exactly this line next
//   C~ ^AUTH PLAIN \S+$    the client's next line must match this regular expression
//   C* 3                   the client sends three lines, whatever they are
//   BODY                   the client sends a message body up to <CRLF>.<CRLF> (kept, unstuffed)
//   TLS | STARTTLS-UP      upgrade the server socket with node:tls and the test CA's
//                          certificate (first step of a script: implicit TLS)
//   WAIT ms | DELAY ms     wait (real time)
//   SPLIT n [ms]           from here, every S:/S+ write goes out in n-byte pieces,
//                          each its own TCP segment (ms between pieces, default 5); SPLIT 0 ends it
//   EOF | CLOSE            the server closes its side (FIN) and stops
//   RESET                  the server resets the connection (RST) and stops
//   STALL                  the server never answers again (it still reads and records)
//   FREEZE                 the server stops reading and answering: the client's writes back up
//   READ n                 the server reads n raw bytes (e.g. part of a body), whatever they are
//   GARBAGE n              the server sends n pseudo-random bytes (fixed seed: the same every run)
//   HANDSHAKE-GARBAGE n    wait for the client's first TLS record, then answer it with n garbage bytes
//   MARK name              remember this point (rec.marks[name] = lines seen so far)
//
// A script may also be an array whose items are step strings (or several
// lines) or async functions `(conn) => void` for behaviour no step expresses.
// When the steps run out, the server reads on (recording everything) and
// says nothing until the client closes.

/** Parses a script (string or array) into steps. */
export function parseScript(script) {
  const items = Array.isArray(script) ? script : [script];
  const steps = [];
  for (const item of items) {
    if (typeof item === 'function') {
      steps.push({ op: 'call', fn: item, text: `<function ${item.name || 'anonymous'}>` });
      continue;
    }
    for (const raw of String(item).split('\n')) {
      const line = raw.replace(/^\s+/, '').replace(/\r$/, '');
      if (line === '' || line.startsWith('#')) continue;
      steps.push(parseStep(line, raw));
    }
  }
  return steps;
}

function parseStep(line, raw) {
  const text = line;
  const rest = (prefix) => (line === prefix.trimEnd() ? '' : line.slice(prefix.length));
  if (line.startsWith('S: ') || line === 'S:') return { op: 'send', bytes: Buffer.from(`${rest('S: ')}\r\n`, 'latin1'), text };
  if (line.startsWith('S+ ')) return { op: 'send', bytes: unescape(line.slice(3)), text };
  if (line.startsWith('C: ') || line === 'C:') return { op: 'expect', line: rest('C: '), text };
  if (line.startsWith('C~ ')) return { op: 'expect', pattern: new RegExp(line.slice(3)), text };
  if (line.startsWith('C* ')) return { op: 'skip', count: int(line.slice(3), raw), text };
  const [word, ...args] = line.split(/\s+/);
  switch (word) {
    case 'BODY':
      return { op: 'body', text };
    case 'TLS':
    case 'STARTTLS-UP':
      return { op: 'tls', text };
    case 'WAIT':
    case 'DELAY':
      return { op: 'delay', ms: int(args[0], raw), text };
    case 'SPLIT':
      return { op: 'split', size: int(args[0], raw), gap: args[1] === undefined ? 5 : int(args[1], raw), text };
    case 'EOF':
    case 'CLOSE':
      return { op: 'close', text };
    case 'RESET':
      return { op: 'reset', text };
    case 'STALL':
      return { op: 'stall', text };
    case 'FREEZE':
      return { op: 'freeze', text };
    case 'READ':
      return { op: 'read', count: int(args[0], raw), text };
    case 'GARBAGE':
      return { op: 'garbage', count: int(args[0], raw), text };
    case 'HANDSHAKE-GARBAGE':
      return { op: 'handshake-garbage', count: int(args[0], raw), text };
    case 'MARK':
      return { op: 'mark', name: args[0], text };
    default:
      throw new Error(`unknown script line: ${raw}`);
  }
}

function int(value, raw) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number in script line: ${raw}`);
  return n;
}

/** `S+` escapes: \r \n \t \0 \\ \xHH; everything else literal (latin1). */
export function unescape(text) {
  const out = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\' || i + 1 === text.length) {
      out.push(text.charCodeAt(i) & 0xff);
      continue;
    }
    const next = text[++i];
    if (next === 'r') out.push(13);
    else if (next === 'n') out.push(10);
    else if (next === 't') out.push(9);
    else if (next === '0') out.push(0);
    else if (next === '\\') out.push(92);
    else if (next === 'x') {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(92, next.charCodeAt(0) & 0xff);
  }
  return Buffer.from(out);
}

/** Escapes bytes for an `S+` line (the inverse of `unescape`). */
export function escape(bytes) {
  let out = '';
  for (const b of Buffer.from(bytes)) {
    if (b === 13) out += '\\r';
    else if (b === 10) out += '\\n';
    else if (b === 92) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * "A close at any byte": the first `at` bytes of `text` (a reply or several,
 * CRLF-terminated lines), then the server closes.
 */
export function closeAtByte(text, at) {
  return `S+ ${escape(Buffer.from(text, 'latin1').subarray(0, at))}\nCLOSE`;
}

/** Deterministic pseudo-random bytes (xorshift32), the same for a given seed. */
export function garbageBytes(count, seed = 0x9e3779b9) {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(count);
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  // Never a digit first: a garbage reply must not parse as a reply by accident.
  if (count > 0 && out[0] >= 0x30 && out[0] <= 0x39) out[0] = 0x7e;
  return out;
}
