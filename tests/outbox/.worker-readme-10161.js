// src/index.js — a fetch handler that enqueues, a queue consumer that sends
import { cloudflareQueueStore, createClient, createOutbox } from "./../../pkg/src/workers.js";

function outboxFor(env) {
  const client = createClient({
    host: env.SMTP_HOST,
    port: Number(env.SMTP_PORT || 587),
    auth: { user: env.SMTP_USER, pass: env.SMTP_PASS },
  });
  const store = cloudflareQueueStore({ queue: env.OUTBOX, db: env.OUTBOX_DB });
  return { client, outbox: createOutbox({ client, store }) };
}

export default {
  async fetch(request, env) {
    const { outbox } = outboxFor(env);
    const url = new URL(request.url);
    if (url.pathname.startsWith('/status/')) {
      return Response.json(await outbox.status(url.pathname.slice('/status/'.length)));
    }
    const { to, subject, text } = await request.json();
    const id = await outbox.enqueue({ from: env.MAIL_FROM, to, subject, text });
    return Response.json({ id }, { status: 202 });
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
