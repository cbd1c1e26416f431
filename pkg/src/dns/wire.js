// The DNS wire format (RFC 1035), just enough for DNS-over-HTTPS (RFC 8484):
// one question out, the answer section back. Used where the runtime has no
// resolver of its own (Workers, the browser) or when `dns: { doh }` is set.
// Every read is bounds-checked: a short or looping answer is an error, never
// a hang or an out-of-range read.

/** Record types the resolver asks for. */
export const TYPES = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };

/** RCODEs that mean "no such data" rather than a failure. */
export const RCODE_NXDOMAIN = 3;

/**
 * A query for `name` and `type`, ID 0 as RFC 8484 §4.1 recommends (cache
 * friendly), recursion desired.
 * @returns {Uint8Array}
 */
export function encodeQuery(name, type) {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const encoder = new TextEncoder();
  const parts = labels.map((label) => encoder.encode(label));
  for (const part of parts) {
    if (part.length > 63) throw new RangeError(`the DNS label "${new TextDecoder().decode(part)}" is longer than 63 octets`);
  }
  const nameLength = parts.reduce((n, p) => n + 1 + p.length, 1);
  if (nameLength > 255) throw new RangeError(`the DNS name ${name} is longer than 255 octets`);
  const out = new Uint8Array(12 + nameLength + 4);
  out[2] = 0x01; // RD
  out[5] = 1; // QDCOUNT
  let at = 12;
  for (const part of parts) {
    out[at++] = part.length;
    out.set(part, at);
    at += part.length;
  }
  out[at++] = 0;
  out[at++] = type >> 8;
  out[at++] = type & 0xff;
  out[at++] = 0;
  out[at] = 1; // class IN
  return out;
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }

  need(n, at = this.at) {
    if (at + n > this.bytes.length) throw new RangeError('the DNS answer is truncated');
  }

  u8() {
    this.need(1);
    return this.bytes[this.at++];
  }

  u16() {
    this.need(2);
    const v = (this.bytes[this.at] << 8) | this.bytes[this.at + 1];
    this.at += 2;
    return v;
  }

  u32() {
    return this.u16() * 65536 + this.u16();
  }

  /** A possibly compressed name starting at `this.at`; advances past it. */
  name() {
    const labels = [];
    let at = this.at;
    let jumped = false;
    // Each pointer must go backwards: no loops, and at most 128 labels.
    let limit = at;
    for (let steps = 0; steps < 128; steps++) {
      this.need(1, at);
      const len = this.bytes[at];
      if (len === 0) {
        if (!jumped) this.at = at + 1;
        return labels.join('.').toLowerCase();
      }
      if ((len & 0xc0) === 0xc0) {
        this.need(2, at);
        const target = ((len & 0x3f) << 8) | this.bytes[at + 1];
        if (target >= limit) throw new RangeError('the DNS answer has a compression pointer loop');
        if (!jumped) this.at = at + 2;
        jumped = true;
        limit = target;
        at = target;
        continue;
      }
      if (len > 63) throw new RangeError('the DNS answer has a malformed label');
      this.need(1 + len, at);
      labels.push(new TextDecoder().decode(this.bytes.subarray(at + 1, at + 1 + len)));
      at += 1 + len;
    }
    throw new RangeError('the DNS answer has a name of more than 128 labels');
  }
}

/**
 * Parses a response.
 * @param {Uint8Array} bytes
 * @returns {{ rcode: number, truncated: boolean, answers: { name: string, type: number, ttl: number, data: any }[] }}
 *   data: A/AAAA an address string, MX { exchange, priority }, TXT the
 *   character-strings joined, CNAME the target; other types are skipped.
 */
export function decodeResponse(bytes) {
  const r = new Reader(bytes);
  r.u16(); // ID
  const flags = r.u16();
  if ((flags & 0x8000) === 0) throw new RangeError('the DNS message is not a response');
  const rcode = flags & 0x0f;
  const truncated = (flags & 0x0200) !== 0;
  const qd = r.u16();
  const an = r.u16();
  r.u16(); // NSCOUNT
  r.u16(); // ARCOUNT
  for (let i = 0; i < qd; i++) {
    r.name();
    r.u16();
    r.u16();
  }
  const answers = [];
  for (let i = 0; i < an; i++) {
    const name = r.name();
    const type = r.u16();
    r.u16(); // class
    const ttl = r.u32();
    const length = r.u16();
    r.need(length);
    const end = r.at + length;
    const data = rdata(r, type, length);
    r.at = end;
    if (data !== undefined) answers.push({ name, type, ttl, data });
  }
  return { rcode, truncated, answers };
}

function rdata(r, type, length) {
  const b = r.bytes;
  const at = r.at;
  switch (type) {
    case TYPES.A:
      if (length !== 4) throw new RangeError('the DNS answer has an A record that is not 4 octets');
      return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
    case TYPES.AAAA: {
      if (length !== 16) throw new RangeError('the DNS answer has an AAAA record that is not 16 octets');
      const groups = [];
      for (let i = 0; i < 16; i += 2) groups.push(((b[at + i] << 8) | b[at + i + 1]).toString(16));
      return compressIpv6(groups);
    }
    case TYPES.MX: {
      const priority = r.u16();
      return { exchange: r.name(), priority };
    }
    case TYPES.CNAME:
      return r.name();
    case TYPES.TXT: {
      let text = '';
      const end = at + length;
      let p = at;
      while (p < end) {
        const n = b[p];
        if (p + 1 + n > end) throw new RangeError('the DNS answer has a malformed TXT record');
        text += new TextDecoder().decode(b.subarray(p + 1, p + 1 + n));
        p += 1 + n;
      }
      return text;
    }
    default:
      return undefined;
  }
}

/** The RFC 5952 text form: the longest run of zero groups as "::". */
function compressIpv6(groups) {
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLength).join(':')}`;
}
