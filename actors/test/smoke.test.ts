import { describe, expect, it } from 'vitest';
import { makeEngine } from './harness.js';

describe('smoke', () => {
  it('runs triage', async () => {
    const { engine, close } = await makeEngine('pglite');
    const run = await engine.startRun({ graph: 'triage', input: { intent: 'refund' } });
    const done = await engine.waitForRun(run.id, 20000);
    const events = await engine.listEvents(run.id, { limit: 1000 });
    console.log(done.status, JSON.stringify(done.error), JSON.stringify(done.nodes));
    console.log(events.map((e) => `${e.seq} ${e.type} ${e.from}->${e.to}`).join('\n'));
    console.log(JSON.stringify(done.output, null, 1).slice(0, 2000));
    expect(done.status).toBe('succeeded');
    await close();
  });
});
