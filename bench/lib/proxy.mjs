// A TCP delay proxy (a child process of run.mjs): every byte is held for a
// fixed one-way delay in each direction (so RTT = 2 × delay), in order,
// with TCP_NODELAY on both sides.
//
// It also counts the round trips a client waits for. Every chunk carries a
// round number: a client chunk gets 1 + the highest round of the server
// bytes delivered to the client before it was written (what it may have
// waited for); a server chunk gets the highest round of the client bytes
// delivered to the server before it was written (what it answers). The
// highest client round of a connection is the length, in round trips, of
// its longest chain of "wait for a reply, then send" — greeting, EHLO,
// STARTTLS, AUTH and every message included. A client that sends a
// message, waits for its final reply, then sends the next, counts one or
// two rounds per message; one that keeps a window of transactions in
// flight counts far fewer.
//
//   node lib/proxy.mjs <targetPort> <oneWayDelayMs>   prints "ready <port>"
// IPC: { op: 'stats' } → { open, connections, rounds } (connections open
// now; connections closed since the last reset, and the sum of their
// highest rounds); { op: 'reset' };
// { op: 'roundsBefore', at } → { rounds }: for the connections closed since
// the last reset, the sum of the highest rounds of the client chunks that
// arrived before `at` (epoch ms): the round trips up to a moment the client
// names, such as its message's final reply, without its QUIT and close.

import net from 'node:net';

const [targetPort, delayArg] = process.argv.slice(2);
const DELAY = Number(delayArg);

let closed = [];
let openConnections = 0;

/** Delivers chunks `DELAY` ms after they arrived, in order, with one timer per pipe. */
class DelayPipe {
  constructor(to, onDelivered) {
    this.to = to;
    this.onDelivered = onDelivered;
    this.queue = [];
    this.timer = null;
    this.ended = false;
  }
  push(chunk, round) {
    this.queue.push({ chunk, round, due: performance.now() + DELAY });
    this.#arm();
  }
  end() {
    this.ended = true;
    this.#arm();
  }
  #arm() {
    if (this.timer) return;
    const head = this.queue[0];
    if (!head) {
      if (this.ended) this.to.end();
      return;
    }
    this.timer = setTimeout(() => this.#fire(), Math.max(0, head.due - performance.now()));
  }
  #fire() {
    this.timer = null;
    const now = performance.now();
    // Everything due goes in one write, as one flight.
    const ready = [];
    while (this.queue.length > 0 && this.queue[0].due <= now + 0.5) ready.push(this.queue.shift());
    if (ready.length > 0) {
      let max = 0;
      for (const r of ready) max = Math.max(max, r.round);
      this.to.write(ready.length === 1 ? ready[0].chunk : Buffer.concat(ready.map((r) => r.chunk)));
      this.onDelivered(max);
    }
    this.#arm();
  }
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  client.setNoDelay(true);
  openConnections += 1;
  const upstream = net.connect({ host: '127.0.0.1', port: Number(targetPort), allowHalfOpen: true });
  upstream.setNoDelay(true);
  const state = { deliveredToClient: 0, deliveredToServer: 0, maxClientRound: 0, arrivals: [] };
  const toServer = new DelayPipe(upstream, (round) => {
    state.deliveredToServer = Math.max(state.deliveredToServer, round);
  });
  const toClient = new DelayPipe(client, (round) => {
    state.deliveredToClient = Math.max(state.deliveredToClient, round);
  });
  client.on('data', (chunk) => {
    const round = state.deliveredToClient + 1;
    state.maxClientRound = Math.max(state.maxClientRound, round);
    state.arrivals.push({ at: performance.timeOrigin + performance.now(), round });
    toServer.push(chunk, round);
  });
  upstream.on('data', (chunk) => toClient.push(chunk, state.deliveredToServer));
  client.on('end', () => toServer.end());
  upstream.on('end', () => toClient.end());
  // Ends travel with the same delay; the connection counts once both sides closed.
  let open = 2;
  const closedOne = () => {
    open -= 1;
    if (open === 0) {
      openConnections -= 1;
      closed.push(state);
    }
  };
  client.on('close', closedOne);
  upstream.on('close', closedOne);
  const fail = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', fail);
  upstream.on('error', fail);
});

server.listen(0, '127.0.0.1', () => process.stdout.write(`ready ${server.address().port}\n`));

process.on('message', (msg) => {
  if (msg?.op === 'stats') {
    process.send({ op: 'stats', open: openConnections, connections: closed.length, rounds: closed.reduce((a, c) => a + c.maxClientRound, 0) });
  }
  if (msg?.op === 'roundsBefore') {
    const roundsBefore = (c) => c.arrivals.reduce((max, a) => (a.at < msg.at ? Math.max(max, a.round) : max), 0);
    process.send({ op: 'roundsBefore', rounds: closed.reduce((sum, c) => sum + roundsBefore(c), 0) });
  }
  if (msg?.op === 'reset') {
    closed = [];
    process.send({ op: 'reset' });
  }
});
process.on('disconnect', () => process.exit(0));
