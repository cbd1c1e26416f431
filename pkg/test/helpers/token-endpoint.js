// A local OAuth 2.0 token endpoint (RFC 6749 §6, the refresh-token grant)
// on 127.0.0.1 and a random port: it issues "tok-1", "tok-2"... and records
// every request's form fields.

import { createServer } from 'node:http';

/**
 * @param {object} [options]
 * @param {number} [options.expiresIn] seconds each token lives (expires_in)
 * @param {number} [options.delayMs] how long each answer takes
 * @param {(form: URLSearchParams, n: number) => ({ status: number, body: object } | null)} [options.respond]
 *   overrides the answer to request n (counted from 1); null: the usual token
 * @returns {Promise<{ url: string, calls: URLSearchParams[], close(): Promise<void> }>}
 */
export async function startTokenEndpoint({ expiresIn = 3600, delayMs = 0, respond = () => null } = {}) {
  const state = { url: '', calls: [], close: null };
  let issued = 0;
  const server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => (text += chunk));
    request.on('end', () => {
      const form = new URLSearchParams(text);
      state.calls.push(form);
      const answer = () => {
        let reply = respond(form, state.calls.length);
        if (reply === null) {
          const wellFormed = request.method === 'POST' && request.headers['content-type'] === 'application/x-www-form-urlencoded' && form.get('grant_type') === 'refresh_token';
          issued += 1;
          reply = wellFormed
            ? { status: 200, body: { access_token: `tok-${issued}`, token_type: 'Bearer', expires_in: expiresIn, scope: 'https://mail.google.com/' } }
            : { status: 400, body: { error: 'invalid_request' } };
        }
        response.writeHead(reply.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(reply.body));
      };
      setTimeout(answer, delayMs);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${server.address().port}/token`;
  state.close = () => {
    server.closeAllConnections?.();
    return new Promise((resolve) => server.close(resolve));
  };
  return state;
}
