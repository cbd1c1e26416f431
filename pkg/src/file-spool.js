// A temporary-file spool for DKIM signing on runtimes with a file system
// (Node, Deno, Bun): a one-shot stream is written here while it is hashed,
// then read back to be sent, so its size never costs memory. The file is
// private (0600, in a fresh mkdtemp directory) and removed once the
// message has settled.

import { BodySource, CHUNK_SIZE } from './body.js';

export async function fileSpool() {
  const { mkdtemp, open, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'wasmtp-dkim-'));
  const file = await open(join(dir, 'spool'), 'w+', 0o600);
  let size = 0;
  let released = false;
  return {
    async write(chunk) {
      for (let at = 0; at < chunk.byteLength; ) {
        const { bytesWritten } = await file.write(chunk, at, chunk.byteLength - at, size);
        at += bytesWritten;
        size += bytesWritten;
      }
    },
    source() {
      const total = size;
      return new BodySource({
        size: total,
        replayable: true,
        open: async function* () {
          for (let position = 0; position < total; ) {
            const buffer = new Uint8Array(Math.min(CHUNK_SIZE, total - position));
            const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, position);
            if (bytesRead === 0) throw new Error('the DKIM spool file ended early');
            position += bytesRead;
            yield buffer.subarray(0, bytesRead);
          }
        },
      });
    },
    async release() {
      if (released) return;
      released = true;
      await file.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
