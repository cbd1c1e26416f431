// A Worker for the Cloudflare store's policy tests (workers.test.mjs): a
// plaintext server, short back-off and lease, and routes to drive the
// outbox: POST /enqueue, GET /status/:id, POST /retry/:id, GET /list/:state.

import { cloudflareQueueStore, createClient, createOutbox } from '../../pkg/src/workers.js';

function outboxFor(env) {
  const client = createClient({ host: '127.0.0.1', port: Number(env.SMTP_PORT), security: 'none', timeouts: { dataEnd: 1000 } });
  const outbox = createOutbox({
    client,
    store: cloudflareQueueStore({ queue: env.POLICY, db: env.OUTBOX_DB, table: 'policy_outbox', leaseMs: 5000 }),
    retry: { initialDelay: 1000, maxDelay: 2000, jitter: 0 },
  });
  return { client, outbox };
}

export default {
  async fetch(request, env) {
    const { outbox } = outboxFor(env);
    const [, verb, arg] = new URL(request.url).pathname.split('/');
    try {
      if (verb === 'enqueue') return Response.json({ id: await outbox.enqueue(await request.json()) });
      if (verb === 'status') return Response.json(await outbox.status(arg));
      if (verb === 'retry') return Response.json(await outbox.retry(arg));
      if (verb === 'list') return Response.json(await outbox.list({ state: arg }));
      return new Response('not found', { status: 404 });
    } catch (error) {
      return Response.json({ error: { code: error.code, message: error.message } }, { status: 500 });
    }
  },

  async queue(batch, env) {
    const { client, outbox } = outboxFor(env);
    try {
      await outbox.consume(batch);
    } finally {
      await client.close();
    }
  },
};
