// A small programmable SMTP server for fake-server scripts: a function step
// that answers whatever the client sends (EHLO/HELO, MAIL, RCPT, DATA,
// RSET, NOOP, QUIT; pipelined or not), with hooks that pick a reply or a
// fault at each point. Used for the pool and load tests, where a linear
// script cannot know the order of messages in advance.
//
//   startFakeServer({ script: () => [respond({ capabilities: ['PIPELINING'], policy })] })
//
// policy(point, ctx) is called at each point and returns undefined (carry on
// normally), a reply line ('451 4.3.0 later') to send instead, or a fault:
// 'close' (FIN), 'reset' (RST), 'stall' (never answer). Points:
//   'greeting', 'ehlo', 'mail', 'rcpt', 'data' (the reply to DATA),
//   'body' (after each body line, ctx.bodyLines read so far),
//   'stored?' (the end of data arrived; a reply here refuses the message, nothing is stored),
//   'final' (the message is stored; the fault or reply replaces the 250), 'quit'.
// ctx: { conn, point, transactions (on this connection), mail, rcpts, message }.

import { garbageBytes } from './script.mjs';

/**
 * @param {object} options
 * @param {string[]} [options.capabilities] EHLO keywords
 * @param {(point: string, ctx: object) => (string|undefined)} [options.policy]
 * @param {(message: {conn: number, mail: string, rcpts: string[], body: Buffer}) => void} [options.onStore]
 */
export function respond({ capabilities = ['PIPELINING', '8BITMIME'], policy = () => undefined, onStore = () => {} } = {}) {
  return async function responder(conn) {
    const ctx = { conn, point: '', transactions: 0, mail: null, rcpts: [], message: null, bodyLines: 0 };
    // Returns true when the dialog must stop (a fault was acted on).
    const act = async (point, normal) => {
      ctx.point = point;
      const decision = policy(point, ctx);
      if (decision === undefined || decision === null) {
        if (normal) await conn.write(normal);
        return false;
      }
      if (decision === 'close') {
        conn.socket.end();
        return true;
      }
      if (decision === 'reset') {
        conn.socket.resetAndDestroy();
        return true;
      }
      if (decision === 'stall') {
        return true;
      }
      if (decision === 'garbage') {
        await conn.write(garbageBytes(32, 0x1234 + ctx.transactions));
        return false;
      }
      await conn.write(`${decision}\r\n`);
      return 'replied';
    };
    try {
      if (await act('greeting', '220 mx.test ESMTP responder\r\n')) return false;
      for (;;) {
        const line = await conn.readLine();
        if (line === null) return false;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') {
          const lines = ['mx.test', ...capabilities];
          const reply = lines.map((l, i) => `250${i + 1 === lines.length ? ' ' : '-'}${l}\r\n`).join('');
          if ((await act('ehlo', reply)) === true) return false;
        } else if (verb === 'MAIL') {
          ctx.mail = line;
          ctx.rcpts = [];
          ctx.rcptOk = 0;
          ctx.mailOk = false;
          const r = await act('mail', '250 2.1.0 ok\r\n');
          if (r === true) return false;
          ctx.mailOk = r === false;
        } else if (verb === 'RCPT') {
          ctx.rcpts.push(line);
          const r = await act('rcpt', '250 2.1.5 ok\r\n');
          if (r === true) return false;
          if (r === false) ctx.rcptOk += 1;
        } else if (verb === 'DATA') {
          if (!ctx.mailOk || ctx.rcptOk === 0) {
            await conn.write('554 5.5.1 no valid recipients\r\n');
            continue;
          }
          const r = await act('data', '354 go ahead\r\n');
          if (r === true) return false;
          if (r === 'replied') continue;
          ctx.transactions += 1;
          const body = [];
          ctx.bodyLines = 0;
          for (;;) {
            const b = await conn.readBodyLine();
            if (b === null) return false;
            if (b === '.') break;
            body.push(b.startsWith('.') ? b.slice(1) : b);
            ctx.bodyLines += 1;
            if (await act('body')) return false;
          }
          ctx.message = { conn: conn.index, mail: ctx.mail, rcpts: ctx.rcpts.slice(), body: Buffer.from(body.map((l) => `${l}\r\n`).join(''), 'latin1') };
          const refused = await act('stored?');
          if (refused === true) return false;
          if (refused === 'replied') {
            ctx.mailOk = false;
            continue;
          }
          onStore(ctx.message);
          conn.messages.push(ctx.message.body);
          ctx.mailOk = false;
          if ((await act('final', `250 2.0.0 ok queued as C${conn.index}T${ctx.transactions}\r\n`)) === true) return false;
        } else if (verb === 'RSET') {
          ctx.mailOk = false;
          await conn.write('250 2.0.0 ok\r\n');
        } else if (verb === 'NOOP') {
          await conn.write('250 2.0.0 ok\r\n');
        } else if (verb === 'QUIT') {
          if (await act('quit', '221 2.0.0 bye\r\n')) return false;
          conn.socket.end();
          return false;
        } else {
          await conn.write('500 5.5.2 unrecognised command\r\n');
        }
      }
    } catch {
      return false; // the client went away under a write
    }
  };
}
