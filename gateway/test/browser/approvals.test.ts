import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '@ao/runtime';
import type { Server } from '../process.js';
import { ARTIFACTS, chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';

const FIXTURES = fileURLToPath(new URL('./hitl-fixtures.ts', import.meta.url));

interface RunView {
  id: string;
  status: string;
  nodes: Record<string, { status: string }>;
  waits: Array<{ id: string; node: string; kind: string }>;
}

/**
 * A person in the loop, through the inspector in Debian's Chromium against a real `ao serve`: two
 * runs of `triage-with-approval` wait for a refund's approval; the runs page lists both under
 * "Waiting for you"; one is approved from its run page (after a bad answer, which the gateway
 * refuses and the form shows at its field) and refunds, the other is rejected with a comment and
 * ends without a refund. Then an agent's question (`ask_human`) answered in a text box, and a soft budget limit granted more. Screenshots land in gateway/test/browser/artifacts/.
 */
describe.skipIf(!chromiumAvailable())('answering waiting runs from the inspector', () => {
  let session: InspectorSession;
  let server: Server;
  let page: Page;
  const { api, events } = gatewayApi(() => server.url);
  const start = () =>
    api<{ id: string }>('/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: 'triage-with-approval', input: { intent: 'refund' } }),
    });
  const refundCalls = (evs: Envelope[]) => evs.filter((e) => e.type === 'tool.call' && (e.payload as { name?: string }).name === 'stripe_refund');
  const waitingRow = (id: string) => `[data-testid=waiting-row][data-run="${id}"]`;

  beforeAll(async () => {
    session = await openInspector('ao-browser-hitl-', { AO_GRAPHS: FIXTURES });
    ({ server, page } = session);
  }, 120_000);
  afterAll(async () => session?.close());

  let approveId: string;
  let rejectId: string;

  it('lists both waiting runs under "Waiting for you" with node, kind, prompt and time left', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=runs][data-feed=open]');
    // Started after the page listens: they appear as they go to sleep, without a reload.
    approveId = (await start()).id;
    rejectId = (await start()).id;
    for (const id of [approveId, rejectId]) {
      const row = page.locator(waitingRow(id));
      await row.waitFor({ timeout: 60_000 });
      expect(await row.getAttribute('data-node')).toBe('refund');
      expect(await row.getAttribute('data-kind')).toBe('approval');
      const cells = await row.locator('td').allTextContents();
      expect(cells.slice(1, 5)).toEqual(['triage-with-approval', 'refund', 'approval', 'Approve this refund?']);
      // Three days to answer.
      expect(cells[6]).toMatch(/^(2 d 23|3 d 00) h$/);
    }
    expect(await page.locator('[data-testid=waiting]').getAttribute('data-count')).toBe('2');
    for (const id of [approveId, rejectId]) expect((await api<RunView>(`/runs/${id}`)).status).toBe('waiting');
    await shot(page, 'waiting-list');
  });

  it('refuses a negative amount at its field, then approves from the run page: the run resumes live and refunds', async () => {
    await page.click(`${waitingRow(approveId)} [data-testid=waiting-answer]`);
    await runPage(page, `[data-run="${approveId}"][data-ended=waiting]`);
    const form = page.locator('[data-testid=wait][data-node=refund]');
    await form.waitFor();
    expect(await form.getAttribute('data-mode')).toBe('approval');
    expect(await form.locator('[data-testid=wait-prompt]').textContent()).toBe('Approve this refund?');
    await page.waitForSelector('[data-testid=node-refund][data-status=waiting]');
    expect(await page.locator('[data-testid=node-refund]').textContent()).toContain('awaiting approval');
    expect(await page.locator('[data-testid=node-classify]').getAttribute('data-status')).toBe('succeeded');
    await shot(page, 'wait-approval');

    // A bad answer: the gateway's 400 shows next to the field it names, and nothing changes.
    await form.locator('[data-testid=answer-amount]').fill('-5');
    await form.locator('[data-testid=approve]').click();
    const error = form.locator('[data-testid=answer-error-amount]');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/^AO_VALIDATION: payload\.amount: /);
    expect(await form.locator('[data-testid=approve]').isEnabled()).toBe(true);
    expect((await api<RunView>(`/runs/${approveId}`)).status).toBe('waiting');
    await shot(page, 'wait-bad-answer');

    // A good one, double-clicked: the buttons are disabled while it is sent, so one request goes.
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith(`/runs/${approveId}/signal`)) posts.push(r.postData() ?? '');
    });
    await form.locator('[data-testid=answer-amount]').fill('12.5');
    const t0 = Date.now();
    await form.locator('[data-testid=approve]').dblclick();
    await runPage(page, `[data-run="${approveId}"][data-ended=succeeded]`);
    const approveToSucceededMs = Date.now() - t0;
    expect(posts).toHaveLength(1);
    expect(JSON.parse(posts[0]!)).toEqual({ node: 'refund', waitId: 'approval/refund/1', payload: { approved: true, amount: 12.5 } });
    expect(await page.locator('[data-testid=node-refund]').getAttribute('data-status')).toBe('succeeded');
    expect(await page.locator('[data-testid=waits]').count()).toBe(0);
    expect(await page.locator('[data-testid=status]').first().getAttribute('data-status')).toBe('succeeded');
    // The page followed the run as it resumed: the whole log, the answer included, is on it.
    const log = await events(approveId);
    expect(await page.locator('[data-testid=run-page]').getAttribute('data-events')).toBe(String(log.length));
    const types = log.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['wait.opened', 'run.waiting', 'run.resumed', 'wait.resolved']));
    expect(log.find((e) => e.type === 'wait.resolved')!.payload).toMatchObject({
      approved: true,
      outcome: { kind: 'signal', payload: { approved: true, amount: 12.5 } },
    });
    expect(refundCalls(log)).toHaveLength(1);
    await page.click(`[data-testid=event-row][data-seq="${log.find((e) => e.type === 'wait.resolved')!.seq}"]`);
    expect(await page.locator('[data-testid=event-row].selected').textContent()).toContain('refund answered, approved');
    await shot(page, 'wait-approved');
    console.log('approve click to run succeeded in the UI:', approveToSucceededMs, 'ms');
    await writeFile(join(ARTIFACTS, 'hitl.json'), JSON.stringify({ approveToSucceededMs }, null, 2));
  });

  it('rejects the other run with a comment: refund is skipped and the run succeeds without a refund', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector(waitingRow(rejectId));
    // The approved run has left the list.
    await page.waitForSelector(waitingRow(approveId), { state: 'detached' });
    await page.click(`${waitingRow(rejectId)} [data-testid=waiting-answer]`);
    const form = page.locator('[data-testid=wait][data-node=refund]');
    await form.waitFor();
    await form.locator('[data-testid=answer-comment]').fill('Not a refund case: the customer was charged correctly.');
    await form.locator('[data-testid=reject]').click();
    await runPage(page, `[data-run="${rejectId}"][data-ended=succeeded]`);
    expect(await page.locator('[data-testid=node-refund]').getAttribute('data-status')).toBe('skipped');
    await shot(page, 'wait-rejected');

    const run = await api<RunView>(`/runs/${rejectId}`);
    expect(run).toMatchObject({ status: 'succeeded', nodes: { refund: { status: 'skipped' } }, waits: [] });
    const log = await events(rejectId);
    expect(refundCalls(log)).toHaveLength(0);
    expect(log.find((e) => e.type === 'wait.resolved')!.payload).toMatchObject({
      approved: false,
      outcome: { kind: 'signal', payload: { approved: false, comment: 'Not a refund case: the customer was charged correctly.' } },
    });

    await page.goto(`${server.url}/`);
    await page.waitForSelector('[data-testid=waiting][data-count="0"]', { state: 'attached' });
    expect(await page.locator('[data-testid=waiting]').textContent()).toContain('Nothing waits for a person.');
  });

  it("answers an agent's question (ask_human) in a text box: the answer is the tool's result and the run goes on", async () => {
    const { id } = await api<{ id: string }>('/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: 'ask-a-person', input: { ticket: 't-1' } }),
    });
    await page.goto(`${server.url}/#/runs/${id}`);
    const form = page.locator('[data-testid=wait][data-node=draft]');
    await form.waitFor({ timeout: 60_000 });
    expect(await form.getAttribute('data-kind')).toBe('interrupt');
    expect(await form.getAttribute('data-mode')).toBe('text');
    const run = await api<RunView & { waits: Array<{ prompt: string }> }>(`/runs/${id}`);
    expect(await form.locator('[data-testid=wait-prompt]').textContent()).toBe(run.waits[0]!.prompt);
    // The node runs (its agent asked mid-turn) and is drawn asking a person.
    await page.waitForSelector('[data-testid=node-draft][data-status=running][data-asking=interrupt]');
    await shot(page, 'wait-question');
    await form.locator('[data-testid=answer-answer]').fill('The customer is Ada Lovelace.');
    await form.locator('[data-testid=answer-submit]').click();
    await runPage(page, `[data-run="${id}"][data-ended=succeeded]`);
    expect(await page.locator('[data-testid=node-draft]').getAttribute('data-asking')).toBeNull();
    const log = await events(id);
    expect(log.find((e) => e.type === 'wait.resolved')!.payload).toMatchObject({
      node: 'draft',
      kind: 'interrupt',
      outcome: { kind: 'signal', payload: { answer: 'The customer is Ada Lovelace.' } },
    });
    expect(JSON.stringify(log.filter((e) => e.type === 'llm.request' && e.from.startsWith('supervisor/draft')).at(-1)!.payload)).toContain('Ada Lovelace');
    await shot(page, 'wait-question-answered');
  });

  it('grants more at a soft budget limit: grant / deny / fork offered, the grant with its amount', async () => {
    const { id } = await api<{ id: string }>('/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: 'soft-budget' }),
    });
    await page.goto(`${server.url}/#/runs/${id}`);
    const form = page.locator('[data-testid=wait][data-kind=budget]');
    await form.waitFor({ timeout: 60_000 });
    expect(await form.getAttribute('data-mode')).toBe('choice');
    // The tokens gauge marks the soft limit the run stopped at.
    expect(await page.locator('[data-testid="gauge-tokens"]').getAttribute('data-soft')).toBe('1200');
    expect(await page.locator('[data-testid="soft-tokens"]').textContent()).toBe('soft 1,200');
    expect(await form.locator('[data-testid=wait-payload]').textContent()).toContain('"limit": "tokens"');
    const node = await form.getAttribute('data-node');
    await page.waitForSelector(`[data-testid=node-${node}][data-asking=budget]`);
    for (const d of ['grant', 'deny', 'fork']) expect(await form.locator(`[data-testid=answer-choice-${d}]`).count()).toBe(1);
    // Fork takes a budget object: JSON, started from the shape.
    await form.locator('[data-testid=answer-choice-fork]').check();
    expect(JSON.parse(await form.locator('[data-testid=answer-json]').inputValue())).toEqual({ decision: 'fork', budget: {} });
    await form.locator('[data-testid=answer-choice-grant]').check();
    await form.locator('[data-testid=answer-tokens]').fill('100000');
    await shot(page, 'wait-budget');
    await form.locator('[data-testid=answer-submit]').click();
    await runPage(page, `[data-run="${id}"][data-ended=succeeded]`);
    const log = await events(id);
    expect(log.find((e) => e.type === 'wait.resolved')!.payload).toMatchObject({
      kind: 'budget',
      outcome: { kind: 'signal', payload: { decision: 'grant', tokens: 100_000 } },
    });
    const raised = log.find((e) => e.type === 'budget.raised')!.payload as { soft: { tokens: number } };
    // Raised by the grant: the gauge's mark follows.
    expect(await page.locator('[data-testid="gauge-tokens"]').getAttribute('data-soft')).toBe(String(raised.soft.tokens));
  });
});
