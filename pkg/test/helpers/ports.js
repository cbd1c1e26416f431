// A free TCP port on 127.0.0.1: one the system handed out and nothing
// listens on any more (a test then binds it, or uses it as a closed port).

import { createServer } from 'node:net';

export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
