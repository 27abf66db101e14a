import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROCESS_TEST_MS, startServerOnce } from './process.js';

describe('the test helper that starts ao serve', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it(
    'never takes another server that answers on its port for its own: a child that could not bind is reported, not returned',
    async () => {
      // Another test's server took the port between its lookup and this child's bind.
      const stranger = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
      await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', r));
      const port = (stranger.address() as AddressInfo).port;
      const dir = await mkdtemp(join(tmpdir(), 'ao-start-server-'));
      dirs.push(dir);
      try {
        // With fault injection a child that exits early was taken as killed by it: the stranger's URL came back.
        const got = await startServerOnce({ AO_DATA_DIR: join(dir, 'data'), AO_FAULT_KILL_AFTER_EVENTS: '5' }, [], port);
        if (got !== 'port taken') await got.stop();
        expect(got).toBe('port taken');
      } finally {
        await new Promise((r) => stranger.close(r));
      }
    },
    PROCESS_TEST_MS,
  );
});
