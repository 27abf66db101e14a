import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelopeId } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import { openPgliteStore } from '../store/mod.js';
import type { Store } from '../store/mod.js';
import { exportRun, importRun, parseRunFile, RUN_FILE_FORMAT, RUN_FILE_VERSION } from './run-file.js';
import type { RunFile } from './run-file.js';

describe('run files (ao export / ao import)', () => {
  let source: Store;
  let target: Store;
  const id = '6f1d2c3b-0000-4000-8000-000000000001';
  beforeAll(async () => {
    [source, target] = await Promise.all([openPgliteStore(), openPgliteStore()]);
    await source.createRun({
      id,
      graph: 'g',
      graphVersion: 'v1',
      input: { q: 1 },
      budget: { tokens: 100 },
      nodes: {},
      traceId: null,
      owner: 'n1',
      leaseMs: 60_000,
    });
    let prev: string | null = null;
    const events: Envelope[] = [1, 2, 3, 4].map((seq) => {
      const e: Envelope = {
        id: newEnvelopeId(),
        runId: id,
        seq,
        from: 'supervisor' as Envelope['from'],
        to: 'supervisor/a' as Envelope['to'],
        type: 'node.started',
        payload: { key: `supervisor/a/${seq}`, secret: 'secret:h1' },
        causationId: prev,
        trace: null,
        time: new Date().toISOString(),
      };
      prev = e.id;
      return e;
    });
    await source.commit({ runId: id, events: events.slice(0, 2), checkpoint: { step: 0, node: null, graphVersion: 'v1', state: { run: id } }, owner: 'n1' });
    await source.commit({
      runId: id,
      events: events.slice(2),
      patch: { status: 'succeeded', output: { ok: true }, finishedAt: new Date().toISOString(), releaseLease: true },
      checkpoint: { step: 1, node: 'a', graphVersion: 'v1', state: { run: id } },
    });
  });
  afterAll(async () => {
    await source.close();
    await target.close();
  });

  it('exports a finished run as one versioned document: run, every envelope, checkpoints; secrets stay handles', async () => {
    const f = await exportRun(source, id);
    expect(f).toMatchObject({
      format: RUN_FILE_FORMAT,
      version: RUN_FILE_VERSION,
      run: { id, graph: 'g', graphVersion: 'v1', status: 'succeeded', input: { q: 1 }, output: { ok: true }, budget: { tokens: 100 } },
    });
    expect(f.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(f.events[0]!.payload).toMatchObject({ secret: 'secret:h1' });
    expect(f.checkpoints.map((c) => [c.step, c.seq])).toEqual([
      [0, 2],
      [1, 4],
    ]);
    // Through JSON and back, as a file: the same document.
    expect(parseRunFile(JSON.stringify(f))).toEqual(f);
    expect((await exportRun(source, id, { checkpoints: false })).checkpoints).toEqual([]);
  });

  it('refuses to export a run that has not finished, or does not exist', async () => {
    await source.createRun({
      id: 'still-running',
      graph: 'g',
      graphVersion: 'v1',
      input: {},
      budget: {},
      nodes: {},
      traceId: null,
      owner: 'n1',
      leaseMs: 60_000,
    });
    await expect(exportRun(source, 'still-running')).rejects.toMatchObject({ code: 'AO_RUN_NOT_FINISHED' });
    await expect(exportRun(source, 'nope')).rejects.toMatchObject({ code: 'AO_RUN_NOT_FOUND' });
  });

  it('imports a file into another store as it was; importing it again is AO_RUN_EXISTS', async () => {
    const f = await exportRun(source, id);
    const r = await importRun(target, f, { tenant: 't1' });
    expect(r).toMatchObject({ id, status: 'succeeded', tenant: 't1', owner: null, lastSeq: 4, output: { ok: true } });
    expect(await target.listEvents(id, { limit: 100 })).toEqual(f.events);
    expect((await target.getCheckpoint(id, 0))?.state).toEqual(f.checkpoints[0]!.state);
    await expect(importRun(target, f)).rejects.toMatchObject({ code: 'AO_RUN_EXISTS' });
    // Nothing was written by the refused import.
    expect(await target.listEvents(id, { limit: 100 })).toEqual(f.events);
  });

  it('refuses a file that is not a valid run file with AO_RUN_FILE_INVALID naming the field', async () => {
    const f = await exportRun(source, id);
    const bad = (v: unknown) => {
      try {
        parseRunFile(v, 'run.json');
      } catch (e) {
        return e as { code: string; message: string; field?: string };
      }
      throw new Error('parsed');
    };
    expect(bad('{not json')).toMatchObject({ code: 'AO_RUN_FILE_INVALID', message: expect.stringMatching(/^run\.json: not JSON/) });
    expect(bad({ ...f, format: 'other' })).toMatchObject({ code: 'AO_RUN_FILE_INVALID', field: 'format' });
    expect(bad({ ...f, version: 2 })).toMatchObject({ code: 'AO_RUN_FILE_INVALID', field: 'version', message: expect.stringContaining('reads version 1') });
    expect(bad({ ...f, events: f.events.slice(1) })).toMatchObject({ code: 'AO_RUN_FILE_INVALID', field: 'events.0.seq' });
    expect(bad({ ...f, run: { ...f.run, status: 'waiting' } })).toMatchObject({ code: 'AO_RUN_FILE_INVALID', field: 'run.status' });
    expect(bad({ ...f, extra: 1 })).toMatchObject({ code: 'AO_RUN_FILE_INVALID' });
    const wrongRun: RunFile = { ...f, events: f.events.map((e, i) => (i === 2 ? { ...e, runId: 'other' } : e)) };
    expect(bad(wrongRun)).toMatchObject({ code: 'AO_RUN_FILE_INVALID', field: 'events.2.runId' });
  });
});
