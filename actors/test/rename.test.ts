import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { exportRun, importRun } from '@ao/runtime';
import { emitterOf } from '@ao/runtime';
import type { Envelope, RunRecord } from '@ao/runtime';
import { Verifier } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { allEvents, countingLlm, makeEngine, toolsWith, until } from './harness.js';

/**
 * A run imported under a new id (`ao import FILE --as NEW_ID`) is a run of its own that still
 * replays recorded: its envelope ids are those its new id gives (made again by a recorded replay
 * under that id), and every reference to an old id (causations, checkpoints' live children, ids
 * and the run id in payloads) follows, so a recorded replay of the copy reproduces its log from
 * every step, next to the original in the same store.
 */
/** Each actor's envelope types in order (concurrent actors interleave differently each time). */
function byActor(events: Envelope[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events) (out[emitterOf(e)] ??= []).push(e.type);
  return out;
}

describe('importing a run under a new id', () => {
  let h: Awaited<ReturnType<typeof makeEngine>>;
  const llm = countingLlm();
  const verifier = new Verifier({ graphs: exampleGraphs as readonly GraphBuilder<unknown>[], tools: toolsWith() });
  beforeAll(async () => {
    h = await makeEngine('pglite', { llm });
  });
  afterAll(async () => {
    await verifier.close();
    await h.close();
  });

  async function approved(): Promise<RunRecord> {
    const { id } = await h.engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_rename' } });
    await until(async () => (await h.store.getRun(id))?.status === 'waiting', 'the approval');
    await h.engine.signal(id, { node: 'refund', payload: { approved: true, amount: 5 } });
    return until(async () => {
      const r = await h.store.getRun(id);
      return r?.status === 'succeeded' && r.owner === null ? r : undefined;
    }, 'the approved run');
  }

  async function expectReplaysRecordedFromEveryStep(copy: RunRecord): Promise<void> {
    const checkpoints = await h.store.listCheckpoints(copy.id);
    const log = await allEvents(h.store, copy.id);
    expect(checkpoints.length).toBeGreaterThan(2);
    for (let step = 0; step < checkpoints.length; step++) {
      const at = `from step ${step}`;
      if (step === checkpoints.length - 1 && log.at(-1)!.seq === checkpoints[step]!.seq) break;
      const calls = llm.calls;
      const replay = await h.engine.waitForRun((await h.engine.replay(copy.id, { fromStep: step, mode: 'recorded' })).id, 20_000);
      expect(replay.replay?.divergence ?? null, at).toBeNull();
      expect(replay.status, at).toBe(copy.status);
      expect(replay.output, at).toEqual(copy.output);
      expect(llm.calls, `${at}: no model call`).toBe(calls);
      const d = await diffRuns(h.store, copy, replay);
      expect(d.first, at).toBeNull();
      const baseSeq = step === 0 ? 0 : checkpoints[step - 1]!.seq;
      expect(byActor((await allEvents(h.store, replay.id)).filter((e) => e.type !== 'run.replayed')), at).toEqual(byActor(log.filter((e) => e.seq > baseSeq)));
    }
  }

  it('an approved run renamed and imported next to its original replays recorded from every step', async () => {
    const original = await approved();
    const file = await exportRun(h.store, original.id);
    const newId = randomUUID();
    const renamed = await verifier.rename(file, newId);
    // Nothing of the old id is left: not the run id, not an envelope id.
    const text = JSON.stringify(renamed);
    expect(text).not.toContain(original.id);
    for (const e of file.events) expect(text).not.toContain(e.id);
    const copy = await importRun(h.store, renamed);
    expect(copy.id).toBe(newId);
    // The copy decides as the original did (ids masked).
    expect((await diffRuns(h.store, original, copy)).first).toBeNull();
    // Causations point into the copy's own log.
    const ids = new Set(renamed.events.map((e) => e.id));
    for (const e of renamed.events) if (e.causationId !== null) expect(ids.has(e.causationId), `${e.type} ${e.seq}`).toBe(true);
    await expectReplaysRecordedFromEveryStep(copy);
    // And it verifies, as `ao verify` would.
    const verdict = await verifier.verify(copy, await allEvents(h.store, copy.id), await h.store.listCheckpoints(copy.id));
    expect(verdict.outcome).toBe('identical');
  }, 120_000);

  it('a research-swarm run (branches, many actors) renamed replays recorded from every step', async () => {
    const original = await h.engine.waitForRun((await h.engine.startRun({ graph: 'research-swarm', input: { topic: 'renaming runs' } })).id);
    const copy = await importRun(h.store, await verifier.rename(await exportRun(h.store, original.id), randomUUID()));
    await expectReplaysRecordedFromEveryStep(copy);
  }, 120_000);

  it('an id that is not a uuid, or the same as the run, or a run that no longer reproduces, is refused', async () => {
    const original = await h.engine.waitForRun((await h.engine.startRun({ graph: 'triage', input: { intent: 'refund' } })).id);
    const file = await exportRun(h.store, original.id);
    await expect(verifier.rename(file, 'copy-of-refund')).rejects.toMatchObject({ code: 'AO_VALIDATION', field: 'as' });
    await expect(verifier.rename(file, randomUUID().toUpperCase())).rejects.toMatchObject({ code: 'AO_VALIDATION', field: 'as' });
    await expect(verifier.rename(file, original.id)).rejects.toMatchObject({ code: 'AO_VALIDATION', field: 'as' });
    const changed = file.events.map((e) =>
      e.type === 'node.start' && (e.payload as { node?: string }).node === 'refund' ? { ...e, payload: { ...(e.payload as object), attempt: 7 } } : e,
    );
    const changedId = randomUUID();
    await expect(verifier.rename({ ...file, events: changed }, changedId)).rejects.toMatchObject({ code: 'AO_REPLAY_DIVERGED' });
    expect(await h.store.getRun(changedId)).toBeUndefined();
  }, 60_000);
});
