import { describe, expect, it } from 'vitest';
import { ActiveRunCap } from '../src/http/auth/limits.js';

/** A store of active runs per tenant that counts how often it is asked. */
function activeRuns() {
  const stored = new Map<string, number>();
  const asked: string[] = [];
  return {
    asked,
    stored,
    runs: { countRuns: async (tenant: string) => (asked.push(tenant), stored.get(tenant) ?? 0) },
    start: (tenant: string) => async () => {
      await new Promise((r) => setImmediate(r));
      stored.set(tenant, (stored.get(tenant) ?? 0) + 1);
      return tenant;
    },
  };
}

describe('ActiveRunCap under a burst', () => {
  it('asks the store once for the submits of one tenant that arrive together, and still refuses past the cap', async () => {
    const s = activeRuns();
    const cap = new ActiveRunCap(s.runs, 60);
    const settled = await Promise.allSettled(Array.from({ length: 100 }, () => cap.admit('acme', s.start('acme'))));
    // One count for the 100 (a count per submit before), and exactly the cap admitted.
    expect(s.asked).toEqual(['acme']);
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(60);
    expect(settled.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(
      Array(40).fill('AO_TOO_MANY_ACTIVE_RUNS'),
    );
  });

  it('a submit after a count was sent gets a count of its own, which sees the runs admitted before it', async () => {
    const s = activeRuns();
    const cap = new ActiveRunCap(s.runs, 2);
    await Promise.all([cap.admit('acme', s.start('acme')), cap.admit('globex', s.start('globex'))]);
    expect(s.asked.sort()).toEqual(['acme', 'globex']);
    await cap.admit('acme', s.start('acme'));
    await expect(cap.admit('acme', s.start('acme'))).rejects.toMatchObject({ code: 'AO_TOO_MANY_ACTIVE_RUNS' });
    expect(s.asked).toHaveLength(4);
  });
});
