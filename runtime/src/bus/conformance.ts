import { describe, expect, it } from 'vitest';
import { newEnvelopeId } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { Bus } from './port.js';

/** Every bus adapter must pass this suite (in-process and JetStream). */
export function busConformance(name: string, factory: () => Promise<Bus>): void {
  const env = (runId: string, seq: number, extra: Partial<Envelope> = {}): Envelope => ({
    id: newEnvelopeId(),
    runId,
    seq,
    from: 'supervisor' as Envelope['from'],
    to: 'supervisor/a' as Envelope['to'],
    type: 'node.start',
    payload: { n: seq },
    causationId: null,
    trace: null,
    time: new Date().toISOString(),
    ...extra,
  });
  const until = async (cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  describe(`bus conformance: ${name}`, () => {
    it('delivers envelopes of a run to its subscribers in publish order', async () => {
      const bus = await factory();
      const got: number[] = [];
      await bus.subscribe('r1', (e) => void got.push(e.seq)).ready;
      for (let i = 1; i <= 50; i++) await bus.publish(env('r1', i));
      await until(() => got.length === 50);
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      await bus.close();
    });

    it("delivers a commit's envelopes one by one, in order, between single ones (large commits split)", async () => {
      const bus = await factory();
      const got: number[] = [];
      const all: number[] = [];
      await bus.subscribe('rc', (e) => void got.push(e.seq)).ready;
      await bus.subscribe('*', (e) => void all.push(e.seq)).ready;
      const commit = (envs: Envelope[]) => (bus.publishCommit ? bus.publishCommit(envs) : Promise.all(envs.map((e) => bus.publish(e))).then(() => undefined));
      await bus.publish(env('rc', 1));
      await commit([2, 3, 4].map((n) => env('rc', n)));
      // Big enough to be split over several messages on a network bus.
      const big = 'x'.repeat(100_000);
      await commit([5, 6, 7, 8].map((n) => env('rc', n, { payload: { big } })));
      await bus.publish(env('rc', 9));
      await until(() => got.length === 9 && all.length === 9, 15_000);
      expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(all).toEqual(got);
      await bus.close();
    });

    it('keeps runs apart and lets a wildcard subscriber see all runs', async () => {
      const bus = await factory();
      const r1: string[] = [];
      const all: string[] = [];
      await bus.subscribe('r1', (e) => void r1.push(e.runId)).ready;
      await bus.subscribe('*', (e) => void all.push(e.runId)).ready;
      await bus.publish(env('r1', 1));
      await bus.publish(env('r2', 1));
      await until(() => all.length === 2);
      await new Promise((r) => setTimeout(r, 20));
      expect(r1).toEqual(['r1']);
      expect(all.sort()).toEqual(['r1', 'r2']);
      await bus.close();
    });

    it('pushes the run-level envelopes of every run to its run watchers as signals, and nothing else', async () => {
      const bus = await factory();
      if (!bus.watchRuns) return void (await bus.close());
      const got: string[] = [];
      const w = bus.watchRuns((s) => void got.push(`${s.runId} ${s.type} ${s.seq}`));
      await w.ready;
      const commit = (envs: Envelope[]) => (bus.publishCommit ? bus.publishCommit(envs) : Promise.all(envs.map((e) => bus.publish(e))).then(() => undefined));
      await bus.publish(env('ws1', 1, { type: 'run.started' }));
      await commit([env('ws1', 2), env('ws1', 3, { type: 'node.completed' }), env('ws1', 4, { type: 'run.finished' })]);
      await bus.publish(env('ws2', 1, { type: 'run.waiting' }));
      await until(() => got.length === 3);
      await new Promise((r) => setTimeout(r, 20));
      expect(got.sort()).toEqual(['ws1 run.finished 4', 'ws1 run.started 1', 'ws2 run.waiting 1']);
      w.unsubscribe();
      await bus.publish(env('ws1', 5, { type: 'run.resumed' }));
      await new Promise((r) => setTimeout(r, 20));
      expect(got).toHaveLength(3);
      await bus.close();
    });

    it('refuses an invalid envelope with AO_ENVELOPE_INVALID naming the field', async () => {
      const bus = await factory();
      await expect(bus.publish({ ...env('r1', 1), seq: 0 })).rejects.toMatchObject({ code: 'AO_ENVELOPE_INVALID', field: 'seq' });
      await expect(bus.publish({ ...env('r1', 1), to: 'bad path!' as Envelope['to'] })).rejects.toMatchObject({
        code: 'AO_ENVELOPE_INVALID',
        field: 'to',
      });
      await bus.close();
    });

    it('stops delivering after unsubscribe, and a failing handler does not stop the others', async () => {
      const bus = await factory();
      const a: number[] = [];
      const b: number[] = [];
      const sa = bus.subscribe('r1', (e) => void a.push(e.seq));
      await sa.ready;
      await bus.subscribe('r1', (e) => {
        b.push(e.seq);
        if (e.seq === 1) throw new Error('boom');
      }).ready;
      await bus.publish(env('r1', 1));
      await until(() => a.length === 1 && b.length === 1);
      sa.unsubscribe();
      await bus.publish(env('r1', 2));
      await until(() => b.length === 2);
      expect(a).toEqual([1]);
      await bus.close();
    });
  });
}
