import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectNatsBus, newEnvelopeId } from '@ao/runtime';
import type { Envelope, RunSignal } from '@ao/runtime';
import { natsAvailable, natsPrefix } from '@ao/runtime/testing';
import { natsServer, natsServerInstalled } from './process.js';

// Under CI this throws rather than skip (a missing service fails the suite).
const natsUp = (await natsAvailable()) && natsServerInstalled();

describe.skipIf(!natsUp)('run signals across a NATS restart', () => {
  it('tells the watcher that signals may have been lost once the connection is back, and delivers the later ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-signal-gap-'));
    const nats = await natsServer(join(dir, 'js'));
    await nats.start();
    const bus = await connectNatsBus({ url: nats.url, prefix: natsPrefix('gap'), name: 'gap-watcher' });
    try {
      const got: RunSignal[] = [];
      let gaps = 0;
      let gapped!: () => void;
      const gap = new Promise<void>((r) => (gapped = r));
      const sub = bus.watchRuns((s) => void got.push(s), {
        onGap: () => {
          gaps += 1;
          gapped();
        },
      });
      await sub.ready;
      await nats.stop();
      await nats.start();
      await gap;
      expect(gaps).toBe(1);
      // Subscribed again: a signal sent after the reconnect arrives.
      const env: Envelope = {
        id: newEnvelopeId(),
        runId: 'r-after',
        seq: 2,
        from: 'supervisor' as Envelope['from'],
        to: 'supervisor' as Envelope['to'],
        type: 'run.finished',
        payload: {},
        causationId: null,
        trace: null,
        time: new Date().toISOString(),
      };
      await bus.publish(env);
      for (let i = 0; !got.some((s) => s.runId === 'r-after'); i++) {
        if (i > 200) throw new Error('the signal after the reconnect never came');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(got.map((s) => [s.runId, s.type, s.seq])).toEqual([['r-after', 'run.finished', 2]]);
      sub.unsubscribe();
    } finally {
      await bus.close();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
