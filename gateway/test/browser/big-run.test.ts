import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBigRunTo } from '../fixtures/big-run.js';
import type { BigRun } from '../fixtures/big-run.js';
import { chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';

const FIXTURES = fileURLToPath(new URL('../stream-fixtures.ts', import.meta.url));

/**
 * The run page on a run of 10,184 envelopes (three swarms of 16 branches, 40 tool calls each),
 * written into the server's store before it starts (test/fixtures/big-run.ts) rather than driven
 * through the engine. The page must load it whole and stay usable; how fast is measured by
 * `pnpm --filter @ao/bench bench:inspector`, not asserted here.
 */
describe.skipIf(!chromiumAvailable())('the inspector on a run of 10,000 events', () => {
  let session: InspectorSession;
  let run: BigRun;
  const { api } = gatewayApi(() => session.server.url);
  const attr = async (p: Page, selector: string, name: string) => p.locator(selector).first().getAttribute(name);
  const nodeStatuses = (p: Page) =>
    p.$$eval('[data-testid^="node-"]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-testid')!.slice(5), e.getAttribute('data-status')])));

  beforeAll(async () => {
    session = await openInspector('ao-browser-10k-', { AO_GRAPHS: FIXTURES }, { prepare: async (dir) => void (run = await writeBigRunTo(dir)) });
  }, 180_000);
  afterAll(async () => session?.close());

  it('stays responsive on a run of 10,000 events: loads it whole, then steps and seeks through it', async () => {
    const view = await api<{ status: string; lastSeq: number }>(`/runs/${run.id}`);
    expect(view).toMatchObject({ status: 'succeeded', lastSeq: run.events });
    expect(run.events).toBeGreaterThanOrEqual(10_000);
    const { page, server } = session;
    await page.goto(`${server.url}/#/runs/${run.id}`);
    await runPage(page, `[data-events="${run.events}"][data-ended=succeeded]`);
    // Interactive: a step back redraws graph, message flow and budget.
    await page.click('[data-testid=step-prev]');
    await runPage(page, `[data-position="${run.events - 1}"]`);
    // The slider seeks to the middle: the three swarms are all running there.
    await page.locator('[data-testid=step-slider]').fill('5000');
    await runPage(page, '[data-position="5000"]');
    expect(await nodeStatuses(page)).toEqual({ 'fan-a': 'running', 'fan-b': 'running', 'fan-c': 'running' });
    expect(await attr(page, '[data-testid=message-flow]', 'data-arrows')).toBe('5000');
    await page.click('[data-testid=step-last]');
    await runPage(page, `[data-position="${run.events}"]`);
    expect(await nodeStatuses(page)).toEqual({ 'fan-a': 'succeeded', 'fan-b': 'succeeded', 'fan-c': 'succeeded' });
    expect(await attr(page, '[data-testid=message-flow]', 'data-arrows')).toBe(String(run.events));
    await shot(page, 'run-10k');
  }, 240_000);
});
