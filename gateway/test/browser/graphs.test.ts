import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '../process.js';
import { chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';

/**
 * The inspector's graphs page in Debian's Chromium against a real `ao serve`: every graph with its
 * edges, one opened with its nodes, edges, budget and input schema, and a run started from the form
 * built from that schema.
 */
describe.skipIf(!chromiumAvailable())('the graphs page in Chromium against a real gateway', () => {
  let session: InspectorSession;
  let server: Server;
  let page: Page;
  const { api } = gatewayApi(() => server.url);

  beforeAll(async () => {
    session = await openInspector('ao-browser-graphs-');
    ({ server, page } = session);
  }, 120_000);
  afterAll(async () => session?.close());

  it('lists every graph with its edges, and opens one with its nodes, edges, budget and input schema', async () => {
    await page.goto(`${server.url}/`);
    await page.click('[data-testid=nav-graphs]');
    await page.waitForURL(/#\/graphs$/);
    const items = page.locator('[data-testid=graph-item]');
    await expect
      .poll(() => items.evaluateAll((els) => els.map((e) => e.getAttribute('data-graph'))))
      .toEqual(['draft-critique', 'research-swarm', 'triage', 'triage-with-approval']);
    // triage is two branches out of classify, each taken only when its condition holds.
    expect(await page.locator('[data-testid=graph-item][data-graph=triage] .edge').allTextContents()).toEqual([
      'classify → refund (when)',
      'classify → escalate (when)',
    ]);

    await page.click('[data-testid=graph-item][data-graph=draft-critique]');
    await page.waitForURL(/#\/graphs\/draft-critique$/);
    const detail = page.locator('[data-testid=graph-detail][data-graph=draft-critique]');
    await detail.waitFor();
    const graph = await api<{ version: string }>('/graphs/draft-critique');
    expect(await detail.textContent()).toContain(`version ${graph.version}`);
    expect(await page.locator('[data-testid=graph-budget]').textContent()).toBe('budget: 20,000 tokens · 120 s wall clock');
    expect(await page.locator('[data-testid=graph-node]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')))).toEqual([
      'outline',
      'draft',
      'critique',
      'publish',
    ]);
    // The drawing has every node.
    for (const n of ['outline', 'draft', 'critique', 'publish']) await page.locator(`[data-testid=graph] [data-testid=node-${n}]`).waitFor();
    const edges = await page
      .locator('[data-testid=graph-edge]')
      .evaluateAll((els) => els.map((e) => [e.textContent?.replace(/\s+/g, ' ').trim(), e.getAttribute('data-conditional'), e.getAttribute('data-back')]));
    expect(edges).toEqual([
      ['outline → draft', 'false', 'false'],
      ['draft → critique', 'false', 'false'],
      ['critique → draft loop back, when', 'true', 'true'],
      ['critique → publish when', 'true', 'false'],
    ]);
    // The input schema: brief, a required string, as the gateway's JSON Schema says.
    expect(await page.locator('[data-testid=graph-schema] li').allTextContents()).toEqual(['brief string, required, min length 1']);
    expect(JSON.parse((await page.locator('[data-testid=graph-schema-json]').textContent())!)).toMatchObject({ required: ['brief'] });
    await shot(page, 'graphs-draft-critique');
  });

  it('starts a draft-critique run from the form built from its schema; an empty brief is refused at the field', async () => {
    await page.goto(`${server.url}/#/graphs/draft-critique`);
    await page.locator('[data-testid=graph-form][data-mode=fields]').waitFor();
    // Left empty, brief is sent without it: the gateway's AO_VALIDATION shows under the field.
    await page.click('[data-testid=graph-start]');
    const err = page.locator('[data-testid=input-error-brief]');
    await err.waitFor();
    expect(await err.textContent()).toMatch(/^AO_VALIDATION: input\.brief/);
    expect(page.url()).toMatch(/#\/graphs\/draft-critique$/);

    await page.fill('[data-testid=input-brief]', 'Why runs should survive a crash');
    await page.click('[data-testid=graph-start]');
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1)!;
    await runPage(page, '[data-ended=succeeded]');
    const run = await api<{ graph: string; input: unknown; status: string }>(`/runs/${id}`);
    expect(run).toMatchObject({ graph: 'draft-critique', input: { brief: 'Why runs should survive a crash' }, status: 'succeeded' });
  });

  it('offers a JSON textarea for a graph without an input schema, and starts a triage run from it', async () => {
    await page.goto(`${server.url}/#/graphs/triage`);
    await page.locator('[data-testid=graph-schema-none]').waitFor();
    await page.locator('[data-testid=graph-form][data-mode=json]').waitFor();
    await page.fill('[data-testid=graph-input-json]', '{oops');
    await page.click('[data-testid=graph-start]');
    expect(await page.locator('[data-testid=graph-error]').textContent()).toMatch(/^input is not JSON/);
    await page.fill('[data-testid=graph-input-json]', '{"intent": "refund"}');
    await page.click('[data-testid=graph-start]');
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    await runPage(page, '[data-ended=succeeded]');
    const run = await api<{ input: unknown }>(`/runs/${page.url().split('/').at(-1)!}`);
    expect(run.input).toEqual({ intent: 'refund' });
  });
});
