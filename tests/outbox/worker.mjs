// An outbox worker process for the tests: `node worker.mjs '<config JSON>'`.
//
// config: { store: { kind: 'spool', dir, ... } | { kind: 'bullmq', connection, ... },
//           smtp: { port }, concurrency, retry, atLeastOnce, report,
//           crashAt: null | 'before-connect' | 'mid-body' | 'after-reply' }
//
// With `crashAt` the worker stops at that point of its first attempt and
// prints "AT <point>": the test then kills it with SIGKILL. The points are
// reached through the public seams only: the client's transport (before
// connecting; mid-body, after the 354, half of the body written) and the
// store (after the 250, before the outcome is saved). "After the end of
// data, before the reply" is the server's doing (it holds its reply).
// SIGTERM closes the outbox gracefully.

import { bullmqStore, createClient, createOutbox, nodeTransport, spoolStore } from 'wasmtp';

const config = JSON.parse(process.argv[2]);
const say = (line) => process.stdout.write(`${line}\n`);
const forever = () => new Promise(() => {});

let crashed = false;
const crashHere = (point) => {
  if (config.crashAt !== point || crashed) return false;
  crashed = true;
  say(`AT ${point}`);
  return true;
};

const transport = {
  async connect(opts) {
    if (crashHere('before-connect')) return forever();
    const socket = await nodeTransport.connect(opts);
    if (config.crashAt !== 'mid-body') return socket;
    let dataOpen = false;
    let onData = null;
    const wrapper = {
      write(bytes) {
        if (dataOpen && !crashed) {
          // Half of the first body write goes out; the end of data never does.
          socket.write(bytes.subarray(0, Math.max(1, bytes.byteLength >> 1)));
          crashHere('mid-body');
          return forever();
        }
        return socket.write(bytes);
      },
      startTls: (o) => socket.startTls(o),
      close: () => socket.close(),
      ref: () => socket.ref?.(),
      unref: () => socket.unref?.(),
      get tlsInfo() {
        return socket.tlsInfo;
      },
      get onData() {
        return onData;
      },
      set onData(handler) {
        onData = handler;
        socket.onData = (bytes) => {
          if (/(^|\n)354[ -]/.test(new TextDecoder().decode(bytes))) dataOpen = true;
          return handler?.(bytes);
        };
      },
      get onClose() {
        return socket.onClose;
      },
      set onClose(handler) {
        socket.onClose = handler;
      },
    };
    return wrapper;
  },
};

function makeStore() {
  const s = config.store;
  if (s.kind === 'spool') return spoolStore({ dir: s.dir, pollInterval: s.pollInterval ?? 100, staleAfter: s.staleAfter });
  if (s.kind === 'bullmq') {
    return bullmqStore({ connection: s.connection, queueName: s.queueName, lockDuration: s.lockDuration, stalledInterval: s.stalledInterval });
  }
  throw new Error(`unknown store ${s.kind}`);
}

/** The store, with the "after the 250, before the state is saved" point in finish(). */
function withCrashPoints(store) {
  if (config.crashAt !== 'after-reply') return store;
  const consume = store.consume.bind(store);
  store.consume = (processJob, opts) =>
    consume(
      (job) =>
        processJob({
          ...job,
          record: job.record,
          message: job.message,
          save: job.save,
          finish: async (record) => {
            if (record.state === 'sent' && crashHere('after-reply')) return forever();
            return job.finish(record);
          },
        }),
      opts,
    );
  return store;
}

const client = createClient({
  host: '127.0.0.1',
  port: config.smtp.port,
  security: 'none',
  transport,
  pool: { maxConnections: config.maxConnections ?? 2 },
  timeouts: config.timeouts,
});
const outbox = createOutbox({
  client,
  store: withCrashPoints(makeStore()),
  retry: config.retry,
  atLeastOnce: config.atLeastOnce === true,
  onOutcome: config.report ? (status) => say(`OUTCOME ${JSON.stringify({ id: status.id, state: status.state, attempts: status.attempts })}`) : undefined,
});

process.on('SIGTERM', async () => {
  await outbox.close();
  await client.close();
  say('STOPPED');
  process.exit(0);
});

await outbox.work({ concurrency: config.concurrency ?? 4 });
say(`READY ${process.pid}`);
