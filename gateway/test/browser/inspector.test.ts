import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '../process.js';
import { chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';
import { RECORD_NODE_STATES } from './page-scripts.js';

const FIXTURES = fileURLToPath(new URL('../stream-fixtures.ts', import.meta.url));

/**
 * The inspector in Debian's Chromium against a real `ao serve` (the one `pnpm start` runs), with
 * the offline model slowed to 500 ms a call so a run can be watched while it goes. The tests share
 * one server and follow one story: start a run from the form, watch it, step through it, replay it.
 * (A run of 10,000 envelopes: big-run.test.ts.) Screenshots of every page land in
 * gateway/test/browser/artifacts/.
 */
describe.skipIf(!chromiumAvailable())('the inspector in Chromium against a real gateway', () => {
  let session: InspectorSession;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let runId: string;
  const { api, events } = gatewayApi(() => server.url);
  const attr = async (p: Page, selector: string, name: string) => p.locator(selector).first().getAttribute(name);
  const nodeStatuses = (p: Page) =>
    p.$$eval('[data-testid^="node-"]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-testid')!.slice(5), e.getAttribute('data-status')])));

  beforeAll(async () => {
    session = await openInspector('ao-browser-', { AO_LLM_LATENCY_MS: '500', AO_GRAPHS: FIXTURES });
    ({ server, browser, page } = session);
  }, 120_000);
  afterAll(async () => session?.close());

  it('starts a run of research-swarm from the form and shows its nodes turn green live, with its message flow and budget', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=runs][data-feed=open]');
    await expect.poll(() => page.locator('[data-testid=start-graph]').inputValue()).toBe('research-swarm');
    // Record every state each graph node shows, from the moment the run page draws it.
    await page.evaluate(RECORD_NODE_STATES);
    await page.click('[data-testid=start-submit]');
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    runId = page.url().split('/').at(-1)!;
    await page.waitForSelector('[data-testid=node-plan][data-status=succeeded]');
    await shot(page, 'run-live');
    await runPage(page, '[data-ended=succeeded]');
    await shot(page, 'run-research-swarm');

    // Live: the nodes were drawn running, then green, as the run went. (Every node after the first:
    // `plan` may already be done by the time the page has loaded, on a busy machine.)
    const log = (await page.evaluate('window.nodeLog')) as Array<[string, string]>;
    for (const node of ['plan', 'search', 'analyse', 'summarise']) {
      const seen = log.filter(([id]) => id === node).map(([, s]) => s);
      if (node !== 'plan') expect(seen, node).toContain('running');
      if (seen.includes('running')) expect(seen.indexOf('running'), node).toBeLessThan(seen.lastIndexOf('succeeded'));
      expect(seen.at(-1), node).toBe('succeeded');
    }
    expect(await nodeStatuses(page)).toEqual({ plan: 'succeeded', search: 'succeeded', analyse: 'succeeded', summarise: 'succeeded' });

    // The message flow: an arrow per envelope, a lane per actor.
    const log2 = await events(runId);
    expect(await attr(page, '[data-testid=message-flow]', 'data-arrows')).toBe(String(log2.length));
    const lanes = await page.locator('[data-testid=lane]').allTextContents();
    expect(lanes).toEqual(
      expect.arrayContaining([
        'supervisor',
        'budget',
        'plan',
        'search',
        'analyse',
        'branch-1',
        'branch-2',
        'branch-3',
        'summarise',
        'llm/default',
        'tool/web_search',
      ]),
    );

    // A gauge for every limit of the budget, reading what the gateway's ledger says.
    const usage = await api<{ used: { tokens: number; tools: number; perTool: Record<string, number> } }>(`/runs/${runId}/usage`);
    const gauge = async (name: string) => ({
      used: Number(await attr(page, `[data-testid="gauge-${name}"]`, 'data-used')),
      limit: Number(await attr(page, `[data-testid="gauge-${name}"]`, 'data-limit')),
      reserved: Number(await attr(page, `[data-testid="gauge-${name}"]`, 'data-reserved')),
    });
    expect(await gauge('tokens')).toEqual({ used: usage.used.tokens, limit: 50000, reserved: 0 });
    expect(await gauge('tools')).toEqual({ used: usage.used.tools, limit: 100, reserved: 0 });
    expect(await gauge('perTool.web_search')).toEqual({ used: usage.used.perTool.web_search, limit: 20, reserved: 0 });
    const clock = await gauge('wallClockSec');
    expect(clock.limit).toBe(300);
    expect(clock.used).toBeGreaterThan(0);
  });

  it('lists runs live with status, graph, duration and tokens, and filters them', async () => {
    const list = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await list.goto(`${server.url}/`);
    await list.waitForSelector('[data-testid=runs][data-feed=open]');
    await list.waitForSelector(`[data-testid=run-row][data-run="${runId}"][data-status=succeeded]`);
    // A run started elsewhere (after the list was loaded) appears and ends there, without a reload.
    const { id } = await api<{ id: string }>('/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: 'triage', input: { intent: 'refund' } }),
    });
    await list.waitForSelector(`[data-testid=run-row][data-run="${id}"][data-status=succeeded]`, { state: 'attached' });
    const row = list.locator(`[data-testid=run-row][data-run="${runId}"]`);
    const run = await api<{ usage: { totalTokens: number } }>(`/runs/${runId}`);
    await expect.poll(() => row.locator('td').nth(5).textContent()).toBe(run.usage.totalTokens.toLocaleString('en-US'));
    expect(await row.locator('td').nth(1).textContent()).toBe('research-swarm');
    expect(await row.locator('td').nth(4).textContent()).toMatch(/\d+(\.\d)? (ms|s)$/);
    await shot(list, 'runs-list');

    await list.selectOption('[data-testid=filter-graph]', 'triage');
    await expect.poll(() => list.locator('[data-testid=run-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')))).toEqual([id]);
    await list.selectOption('[data-testid=filter-graph]', '');
    await list.selectOption('[data-testid=filter-status]', 'failed');
    await list.waitForSelector('text=No runs match the filters');
    await list.close();
  });

  it('steps through the finished run, redrawing graph, message flow and budget as they were at each event', async () => {
    const log = await events(runId);
    const k = log.findIndex((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === 'search');
    const n = k + 1;
    await page.locator('[data-testid=step-slider]').fill(String(n));
    await runPage(page, `[data-position="${n}"]`);
    const analyseStarted = log.slice(0, n).some((e) => e.type === 'node.start' && (e.payload as { node: string }).node === 'analyse');
    expect(await nodeStatuses(page)).toEqual({ plan: 'succeeded', search: 'succeeded', analyse: analyseStarted ? 'running' : 'pending', summarise: 'pending' });
    expect(await attr(page, '[data-testid=run-page]', 'data-status')).toBe('running');
    expect(await attr(page, '[data-testid=message-flow]', 'data-arrows')).toBe(String(n));
    const settled = log
      .slice(0, n)
      .filter((e) => e.type === 'budget.settle')
      .reduce((s, e) => s + (e.payload as { tokens: number }).tokens, 0);
    expect(Number(await attr(page, '[data-testid="gauge-tokens"]', 'data-used'))).toBe(settled);
    expect(Number(await attr(page, '[data-testid="gauge-perTool.web_search"]', 'data-used'))).toBe(1);
    expect(await attr(page, '[data-testid=event-detail]', 'data-seq')).toBe(String(log[k]!.seq));
    await shot(page, 'step-through');

    await page.click('[data-testid=step-next]');
    await runPage(page, `[data-position="${n + 1}"]`);
    await page.click('[data-testid=step-prev]');
    await runPage(page, `[data-position="${n}"]`);
    await page.keyboard.press('ArrowRight');
    await runPage(page, `[data-position="${n + 1}"]`);

    // An event picked in the list: the run as it was there, and its envelope in the panel.
    await page.click('[data-testid=step-first]');
    await runPage(page, '[data-position="0"]');
    expect(Object.values(await nodeStatuses(page))).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(await attr(page, '[data-testid="gauge-tokens"]', 'data-used')).toBe('0');
    await page.click('[data-testid=event-row][data-seq="5"]');
    await runPage(page, '[data-position="5"]');
    expect(await attr(page, '[data-testid=event-detail]', 'data-seq')).toBe('5');
    expect(await page.locator('[data-testid=event-detail] pre').textContent()).toContain(log[4]!.id);
    expect(await nodeStatuses(page)).toMatchObject({ plan: 'running', search: 'pending' });
  });

  it('replays the run from a checkpoint (recorded) and opens the new run, which continues from that step', async () => {
    const { checkpoints } = await api<{ checkpoints: Array<{ step: number; node: string | null }> }>(`/runs/${runId}/checkpoints`);
    const step = checkpoints.find((c) => c.node === 'search')!.step;
    await page.selectOption('[data-testid=replay-mode]', 'recorded');
    await page.click(`[data-testid="replay-${step}"]`);
    await page.waitForURL((u) => /#\/runs\/[0-9a-f-]{36}$/.test(u.hash) && !u.hash.endsWith(runId));
    const replayId = page.url().split('/').at(-1)!;
    await runPage(page, `[data-run="${replayId}"][data-ended=succeeded]`);
    expect(await page.locator('[data-testid=replay-of]').textContent()).toContain(runId.slice(0, 8));
    expect(await nodeStatuses(page)).toEqual({ plan: 'succeeded', search: 'succeeded', analyse: 'succeeded', summarise: 'succeeded' });
    await shot(page, 'replay');
    const replay = await api<{ status: string; replay: { of: string; fromStep: number; mode: string; divergence: unknown } }>(`/runs/${replayId}`);
    expect(replay).toMatchObject({ status: 'succeeded', replay: { of: runId, fromStep: step, mode: 'recorded', divergence: null } });
    // At its first event the replay shows the run as restored from the checkpoint: plan and search done.
    await page.click('[data-testid=step-first]');
    await runPage(page, '[data-position="0"]');
    expect(await nodeStatuses(page)).toMatchObject({ plan: 'succeeded', search: 'succeeded' });
  });
});
