import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '@ao/runtime';
import { chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';

/** Two finished runs whose ids share their first 8 characters: `abcdef12` names neither alone. */
const TWINS = ['abcdef12-0000-4000-8000-000000000001', 'abcdef12-0000-4000-8000-000000000002'];

/**
 * Addresses of runs in Chromium against a real `ao serve`: `/runs/<id>` typed in the address bar
 * (the gateway answers a browser with the inspector), id prefixes, and the runs list's search box.
 */
describe.skipIf(!chromiumAvailable())('run addresses in the browser', () => {
  let session: InspectorSession;
  let id: string;
  const { api } = gatewayApi(() => session.server.url);

  beforeAll(async () => {
    session = await openInspector(
      'ao-browser-addr-',
      {},
      {
        prepare: async (dir) => {
          const store = await openPgliteStore({ dataDir: `${dir}/pglite` });
          for (const twin of TWINS) {
            await store.createRun({
              id: twin,
              graph: 'triage',
              graphVersion: 'v',
              input: { intent: 'refund' },
              budget: {},
              nodes: {},
              traceId: null,
              owner: null,
              leaseMs: 0,
            });
            await store.commit({ runId: twin, events: [], patch: { status: 'succeeded', finishedAt: new Date().toISOString() } });
          }
          await store.close();
        },
      },
    );
    ({ id } = await api<{ id: string }>('/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: 'triage', input: { intent: 'refund' } }),
    }));
    for (let r = await api<{ status: string }>(`/runs/${id}`); r.status !== 'succeeded'; r = await api(`/runs/${id}`))
      await new Promise((res) => setTimeout(res, 100));
  }, 180_000);
  afterAll(async () => session?.close());

  it('opens the run page for /runs/<id> typed in the address bar, by its full id and by an 8-character prefix', async () => {
    const { page, server } = session;
    await page.goto(`${server.url}/runs/${id}`);
    await runPage(page, `[data-run="${id}"][data-ended=succeeded]`);
    expect(new URL(page.url()).hash).toBe(`#/runs/${id}`);
    await shot(page, 'address-run');
    await page.goto(`${server.url}/runs/${id.slice(0, 8)}`);
    await runPage(page, `[data-run="${id}"][data-ended=succeeded]`);
    expect(new URL(page.url()).hash).toBe(`#/runs/${id}`);
    // The same prefix in the hash route resolves too.
    await page.goto(`${server.url}/#/runs/${id.slice(0, 10)}`);
    await runPage(page, `[data-run="${id}"]`);
    expect(new URL(page.url()).hash).toBe(`#/runs/${id}`);
  });

  it('lists the runs an ambiguous prefix matches, each a link, and says a short one is too short', async () => {
    const { page, server } = session;
    await page.goto(`${server.url}/runs/abcdef12`);
    await page.waitForSelector('[data-testid=run-ref-error]');
    expect((await page.locator('[data-testid=run-candidate]').allTextContents()).sort()).toEqual(TWINS);
    expect(await page.locator('[data-testid=run-ref-error] [role=alert]').textContent()).toMatch(/matches 2 runs/);
    await page.click(`[data-testid=run-candidate]:text("${TWINS[1]}")`);
    await runPage(page, `[data-run="${TWINS[1]}"]`);
    await page.goto(`${server.url}/#/runs/abcdef1`);
    await page.waitForSelector('[data-testid=run-ref-error]');
    expect(await page.locator('[data-testid=run-ref-error] [role=alert]').textContent()).toMatch(/at least 8 characters/);
  });

  it('searches the runs list by id prefix as it is typed, and opens the run on Enter', async () => {
    const { page, server } = session;
    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=runs][data-feed=open]');
    const rows = () => page.locator('[data-testid=run-row]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-run')).sort());
    await expect.poll(rows).toEqual([...TWINS, id].sort());
    await page.fill('[data-testid=search]', 'abcdef');
    await expect.poll(rows).toEqual(TWINS);
    await page.fill('[data-testid=search]', id.slice(0, 6).toUpperCase());
    await expect.poll(rows).toEqual([id]);
    await shot(page, 'runs-search');
    await page.press('[data-testid=search]', 'Enter');
    await runPage(page, `[data-run="${id}"]`);
    // Filters combine: a time window in which no run was created lists none.
    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=runs][data-feed=open]');
    await page.fill('[data-testid=search]', 'abcdef12');
    await page.selectOption('[data-testid=filter-since]', '1h');
    await expect.poll(rows).toEqual(TWINS);
    await page.selectOption('[data-testid=filter-status]', 'failed');
    await page.waitForSelector('text=No runs match the filters');
  });
});
