import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { OfflineLlm } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { testGateway } from './harness.js';
import type { TestGateway } from './harness.js';

/** A swarm whose every model call takes 2 s (unless aborted): a cancel lands while it runs. */
const slowSwarm = graph('http-cancel-swarm').node('fan', { agent: 'swarm', concurrency: 4 }) as GraphBuilder<unknown>;

describe('POST /runs/:id/cancel', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await testGateway('pglite', { llm: new OfflineLlm({ latencyMs: 2000 }), graphs: [slowSwarm] });
  });
  afterAll(async () => gw?.close());

  it('cancels a running run (202, status cancelled), then answers 409 AO_RUN_NOT_ACTIVE; an unknown id is 404 AO_RUN_NOT_FOUND', async () => {
    const started = await gw.app.inject({ method: 'POST', url: '/runs', payload: { graph: 'http-cancel-swarm', input: { topic: 'cancel over http' } } });
    expect(started.statusCode).toBe(202);
    const { id } = started.json() as { id: string };
    const deadline = Date.now() + 10_000;
    while (!(await gw.events(id)).some((e: Envelope) => e.type === 'llm.request')) {
      if (Date.now() > deadline) throw new Error('the swarm never called its model');
      await new Promise((r) => setTimeout(r, 20));
    }

    const t0 = Date.now();
    const first = await gw.app.inject({ method: 'POST', url: `/runs/${id}/cancel` });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(first.statusCode).toBe(202);
    expect(first.json()).toEqual({ id, status: 'cancelled' });

    const view = (await gw.app.inject({ method: 'GET', url: `/runs/${id}` })).json() as { status: string; error: { code: string } };
    expect(view.status).toBe('cancelled');
    expect(view.error.code).toBe('AO_RUN_CANCELLED');
    expect(gw.rt.engine.activeRuns()).not.toContain(id);

    const second = await gw.app.inject({ method: 'POST', url: `/runs/${id}/cancel` });
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ error: { code: 'AO_RUN_NOT_ACTIVE', field: 'id' } });

    const unknown = await gw.app.inject({ method: 'POST', url: '/runs/no-such-run/cancel' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'AO_RUN_NOT_FOUND', field: 'id' } });
  });
});
