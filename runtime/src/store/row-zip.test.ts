import { describe, expect, it } from 'vitest';
import { DELTA, KEYFRAME_EVERY, stateBase, stateBaseOf, StateBases, unzipState, unzipStateAgainst, zipState, zipStateAgainst } from './row-zip.js';
import { pgliteStores } from '../testing/raw-pglite.js';

/** A state as a run supervisor writes one at `step` (the nodes' times and counts move, the shape stays). */
const stateAt = (step: number) =>
  JSON.stringify({
    v: 1,
    step,
    sched: {
      nodes: {
        a: { status: 'succeeded', iteration: step, attempt: 1, startedAt: `2026-12-06T04:00:${String(step % 60).padStart(2, '0')}.123Z` },
        b: { status: 'running', iteration: step, attempt: 1 },
      },
      outputs: {},
      finished: false,
    },
    usage: { inputTokens: 213 * step, outputTokens: 111 * step, totalTokens: 324 * step, llmCalls: step, toolCalls: step, perTool: { noop: step } },
    ledger: {
      used: { tokens: 324 * step, usd: 0, tools: step, perTool: { noop: step } },
      byNode: { a: { tokens: 100 * step, usd: 0, tools: step } },
      reserved: {},
    },
  });

describe('checkpoint states deflated against a keyframe of their run', () => {
  it('reads back exactly, in less than the state deflated alone, and only against the keyframe it was written against (AO_STORE_CORRUPT)', () => {
    const base = stateBase(16, stateAt(16));
    const text = stateAt(17);
    const z = zipStateAgainst(text, base);
    expect(z[0]).toBe(DELTA);
    expect(stateBaseOf(z)).toBe(16);
    expect(stateBaseOf(zipState(text))).toBeUndefined();
    expect(unzipStateAgainst(z, base, 'cp')).toBe(text);
    expect(z.length).toBeLessThan(zipState(text).length * 0.7);
    expect(() => unzipStateAgainst(z, undefined, 'cp')).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
    expect(() => unzipStateAgainst(z, stateBase(15, stateAt(16)), 'cp')).toThrow(/step 16, which was not found/);
    expect(() => unzipStateAgainst(z, stateBase(16, stateAt(18)), 'cp')).toThrow(/another state/);
  });

  it('makes one state in KEYFRAME_EVERY of a run a keyframe, and deflates against a keyframe only once its commit landed', () => {
    const bases = new StateBases();
    const first = bases.zipper();
    expect(stateBaseOf(first.zip('r', 1, stateAt(1)))).toBeUndefined();
    // Not landed: the next is a keyframe too.
    const second = bases.zipper();
    expect(stateBaseOf(second.zip('r', 2, stateAt(2)))).toBeUndefined();
    second.landed();
    const kinds: Array<number | undefined> = [];
    for (let step = 3; step < 3 + 2 * KEYFRAME_EVERY; step++) {
      const z = bases.zipper();
      const stored = z.zip('r', step, stateAt(step));
      kinds.push(stateBaseOf(stored));
      z.landed();
    }
    expect(kinds.slice(0, KEYFRAME_EVERY - 1)).toEqual(Array(KEYFRAME_EVERY - 1).fill(2));
    expect(kinds[KEYFRAME_EVERY - 1]).toBeUndefined();
    expect(kinds.slice(KEYFRAME_EVERY, 2 * KEYFRAME_EVERY - 1)).toEqual(Array(KEYFRAME_EVERY - 1).fill(2 + KEYFRAME_EVERY));
    expect(kinds[2 * KEYFRAME_EVERY - 1]).toBeUndefined();
    // A state a quarter longer than its keyframe (a run whose nodes began to run) is a keyframe.
    const grown = bases.zipper();
    expect(stateBaseOf(grown.zip('r', 90, stateAt(90).slice(0, -1) + `,"more":"${'x'.repeat(stateAt(90).length / 3)}"}`))).toBeUndefined();
    grown.landed();
    expect(stateBaseOf(bases.zipper().zip('r', 91, stateAt(91).slice(0, -1) + `,"more":"${'y'.repeat(stateAt(90).length / 3)}"}`))).toBe(90);
    // A run's end forgets it: its next state (a run resumed elsewhere) is a keyframe.
    bases.forget('r');
    expect(stateBaseOf(bases.zipper().zip('r', 99, stateAt(99)))).toBeUndefined();
  });
});

describe('a store writes checkpoint states against keyframes and reads them in any process', () => {
  const pg = pgliteStores();
  const open = () => pg.open();

  it('stores most states of a run as deltas, a fresh store reads each whole, and retention keeps exactly the kept ones readable', async () => {
    const writer = open();
    await writer.createRun({ id: 'k-1', graph: 'gk', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const steps = 40;
    for (let step = 1; step <= steps; step++)
      await writer.commit({
        runId: 'k-1',
        events: [],
        checkpoints: [{ step, seq: 0, node: 'a', graphVersion: 'v', state: JSON.parse(stateAt(step)) }],
        owner: 'n1',
      });
    const stored = await pg.client.query<{ step: number; z: string }>(
      "select step, encode(zstate, 'base64') as z from checkpoints where run_id = 'k-1' order by step",
    );
    const kinds = stored.rows.map((r) => stateBaseOf(Buffer.from(r.z, 'base64')));
    expect(kinds.filter((k) => k === undefined).length).toBe(Math.ceil(steps / KEYFRAME_EVERY));
    for (const k of kinds) if (k !== undefined) expect(kinds[k - 1]).toBeUndefined();
    for (const step of [1, 2, 17, 33, steps]) expect((await open().getCheckpoint('k-1', step))?.state).toEqual(JSON.parse(stateAt(step)));
    expect((await open().latestCheckpoints(['k-1'])).get('k-1')?.state).toEqual(JSON.parse(stateAt(steps)));
    // Retention: the last 5 are kept (deltas against step 33's keyframe, kept) ...
    await writer.commit({ runId: 'k-1', events: [], patch: { status: 'succeeded' }, owner: 'n1' });
    expect(await writer.sweep('gk', { keepCheckpoints: 5 })).toEqual({ runs: 0, checkpoints: steps - 5 });
    // ... and then the last 3 (their keyframe deleted: they are rewritten as keyframes first).
    expect(await writer.sweep('gk', { keepCheckpoints: 3 })).toEqual({ runs: 0, checkpoints: 2 });
    const left = await pg.client.query<{ step: number; z: string }>(
      "select step, encode(zstate, 'base64') as z from checkpoints where run_id = 'k-1' order by step",
    );
    expect(left.rows.map((r) => r.step)).toEqual([steps - 2, steps - 1, steps]);
    expect(left.rows.every((r) => stateBaseOf(Buffer.from(r.z, 'base64')) === undefined && unzipState(Buffer.from(r.z, 'base64')) !== '')).toBe(true);
    for (const step of [steps - 2, steps]) expect((await open().getCheckpoint('k-1', step))?.state).toEqual(JSON.parse(stateAt(step)));
  });
});
