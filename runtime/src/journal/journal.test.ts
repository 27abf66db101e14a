import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBus } from '../bus/mod.js';
import type { EnvelopeDraft } from '../envelope/mod.js';
import { openPgliteStore } from '../store/pglite/pglite-store.js';
import type { Store } from '../store/mod.js';
import { RunJournal } from './journal.js';

const draft = (runId: string, type: string, key: string, to = 'supervisor/a'): EnvelopeDraft => ({
  runId,
  from: 'supervisor' as EnvelopeDraft['from'],
  to: to as EnvelopeDraft['to'],
  type,
  payload: {},
  causationId: null,
  trace: null,
  dedupeKey: key,
});

describe('RunJournal', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(() => store?.close());

  const open = async (id: string) => {
    await store.createRun({ id, graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    return new RunJournal(store, new InProcessBus(), id, 0, [], { owner: 'n1', deliver: () => undefined, isLocal: () => true });
  };

  it('an append queued behind the run\'s end is refused once the end is committed: the journal reads ended when it fails', async () => {
    const j = await open('j-end');
    // In flight first, so the two below are taken together as one batch.
    const first = j.append([draft('j-end', 'node.start', 'a/start')]);
    const end = j.append([draft('j-end', 'run.finished', 'run.finished', 'supervisor')], { patch: { status: 'succeeded' } });
    let endedWhenRefused: boolean | undefined;
    const late = j.append([draft('j-end', 'budget.granted', 'x/grant')], { stage: true }).catch((e: unknown) => {
      endedWhenRefused = j.ended;
      throw e;
    });
    await first;
    await end;
    await expect(late).rejects.toThrow(/has ended/);
    expect(endedWhenRefused).toBe(true);
    expect((await store.listEvents('j-end', { limit: 10 })).map((e) => e.type)).toEqual(['node.start', 'run.finished']);
  });

  it('stages what may wait and commits it with the next durable append, in seq order', async () => {
    const j = await open('j-stage');
    await j.append([draft('j-stage', 'budget.request', 'k/budget')], { stage: true });
    expect(await store.listEvents('j-stage', { limit: 10 })).toEqual([]);
    await j.append([draft('j-stage', 'tool.call', 'k/call', 'tool/noop')]);
    expect((await store.listEvents('j-stage', { limit: 10 })).map((e) => [e.seq, e.type])).toEqual([
      [1, 'budget.request'],
      [2, 'tool.call'],
    ]);
  });
});
