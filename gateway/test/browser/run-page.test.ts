import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '../process.js';
import { chromiumAvailable, gatewayApi, openInspector, runPage, shot } from './chromium.js';
import type { InspectorSession } from './chromium.js';

const ENDED = ['succeeded', 'failed', 'budget_exceeded', 'cancelled', 'waiting'];

/**
 * What a run did, at a glance, in Debian's Chromium against a real `ao serve`: the run's input and
 * output, a node's drawer (each execution's prompt, answer, tool calls and budget decisions), the
 * timeline, branch lanes told apart, and the compare view of a fork with changed instructions.
 */
describe.skipIf(!chromiumAvailable())('the run page and the compare view in Chromium against a real gateway', () => {
  let session: InspectorSession;
  let server: Server;
  let page: Page;
  const { api, events } = gatewayApi(() => server.url);
  const post = <T>(path: string, body: unknown) =>
    api<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  async function finished(id: string): Promise<{ status: string }> {
    for (;;) {
      const run = await api<{ status: string }>(`/runs/${id}`);
      if (ENDED.includes(run.status)) return run;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let critique: string;
  let swarm: string;

  beforeAll(async () => {
    session = await openInspector('ao-browser-run-page-');
    ({ server, page } = session);
    critique = (await post<{ id: string }>('/runs', { graph: 'draft-critique', input: { brief: 'Why runs should survive a crash' } })).id;
    swarm = (await post<{ id: string }>('/runs', { graph: 'research-swarm', input: { question: 'What is durable execution?' } })).id;
    expect((await finished(critique)).status).toBe('succeeded');
    expect((await finished(swarm)).status).toBe('succeeded');
  }, 120_000);
  afterAll(async () => session?.close());

  it("shows the run's input and output, and a node's drawer with each execution's prompt and answer", async () => {
    await page.goto(`${server.url}/#/runs/${critique}`);
    await runPage(page, '[data-ended=succeeded]');
    expect(await page.locator('[data-testid=run-input]').textContent()).toContain('Why runs should survive a crash');
    const run = await api<{ output: { publish: { text: string } } }>(`/runs/${critique}`);
    await page.locator('[data-testid=run-output][data-has-output=true]').waitFor();
    expect(await page.locator('[data-testid=run-output]').textContent()).toContain(run.output.publish.text.split('\n')[0]);

    // Click `draft` in the graph drawing: its two iterations (the loop went round once).
    await page.click('[data-testid=graph] [data-testid=node-draft]');
    const drawer = page.locator('[data-testid=node-drawer][data-node=draft]');
    await drawer.waitFor();
    const execs = drawer.locator('[data-testid=execution]');
    expect(
      await execs.evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-actor'), e.getAttribute('data-iteration'), e.getAttribute('data-attempt'), e.getAttribute('data-status')]),
      ),
    ).toEqual([
      ['supervisor/draft', '1', '1', 'succeeded'],
      ['supervisor/draft@2.1', '2', '1', 'succeeded'],
    ]);
    // What the model was asked and what it answered, as the log has them.
    const log = await events(critique);
    const request = log.find((e) => e.type === 'llm.request' && e.from === 'supervisor/draft@2.1')!.payload as {
      messages: Array<{ role: string; content: string }>;
    };
    const response = log.find((e) => e.type === 'llm.response' && e.to === 'supervisor/draft@2.1')!.payload as { content: string };
    const second = execs.nth(1);
    const prompt = (await second.locator('[data-testid=prompt]').textContent())!.replace(/\s+/g, ' ');
    expect(prompt).toContain('Write the draft; address the latest critique if any.');
    // The second draft is asked with the critique's points.
    expect(request.messages.some((m) => m.content.includes('REVISE'))).toBe(true);
    expect(prompt).toContain('REVISE: 1) a claim lacks a source');
    const answer = (await second.locator('[data-testid=answer]').textContent())!.replace(/\s+/g, ' ');
    expect(answer).toContain(response.content.split('\n')[0]!.replace(/\s+/g, ' '));
    // Tokens and the budget's decisions for the call.
    const settled = log
      .filter((e) => e.type === 'budget.settle' && e.from === 'supervisor/draft@2.1')
      .reduce((s, e) => s + (e.payload as { tokens: number }).tokens, 0);
    expect(await second.locator('.exec-head .facts').textContent()).toContain(`${settled.toLocaleString('en-US')} tokens`);
    expect(await second.locator('[data-testid=call-budget] li').allTextContents()).toEqual([
      expect.stringMatching(/asked for \d+ tokens/),
      expect.stringMatching(/granted: [\d,]+ tokens reserved/),
      `budget #${log.find((e) => e.type === 'budget.settle' && e.from === 'supervisor/draft@2.1')!.seq}: settled: ${settled.toLocaleString('en-US')} tokens`,
    ]);
    await shot(page, 'drawer-draft');

    // Closed with Escape; a node's lane in the message flow opens its drawer too.
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'detached' });
    await page.click('[data-testid=lane][data-node=critique]');
    await page.locator('[data-testid=node-drawer][data-node=critique] [data-testid=execution]').nth(1).waitFor();
    await page.click('[data-testid=drawer-close]');
  });

  it("draws a loop's way back (critique to draft) apart from its forward edge, on the nodes' right", async () => {
    await page.goto(`${server.url}/#/runs/${critique}`);
    await runPage(page, '[data-ended=succeeded]');
    const box = async (selector: string) => {
      // A straight edge is a zero-width path, which Playwright calls hidden: attached is enough.
      const el = page.locator(selector);
      await el.waitFor({ state: 'attached' });
      return el.evaluate((e) => {
        const r = e.getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height };
      });
    };
    const forward = await box('[data-testid=graph] .svelte-flow__edge[data-id="draft->critique"] path.svelte-flow__edge-path');
    const back = await box('[data-testid=graph] .svelte-flow__edge[data-id="critique->draft"] path.svelte-flow__edge-path');
    const draft = await box('[data-testid=graph] [data-testid=node-draft]');
    const critiqueNode = await box('[data-testid=graph] [data-testid=node-critique]');
    // The forward edge runs between the two nodes' middles; the way back leaves critique and enters
    // draft on their right and goes round outside them, so no part of it lies on the forward edge.
    expect(back.x).toBeGreaterThan(forward.x + forward.width);
    expect(back.x + back.width).toBeGreaterThan(Math.max(draft.x + draft.width, critiqueNode.x + critiqueNode.width));
    // It spans the two nodes, from critique up to draft.
    expect(back.y).toBeLessThan(draft.y + draft.height);
    expect(back.y + back.height).toBeGreaterThan(critiqueNode.y);
    expect(await page.locator('[data-testid=graph] .svelte-flow__edge-label').allTextContents()).toEqual(expect.arrayContaining(['loop']));
  });

  it('tells swarm branches apart in the lanes, and draws a timeline with a bar per node execution and per call', async () => {
    await page.goto(`${server.url}/#/runs/${swarm}`);
    await runPage(page, '[data-ended=succeeded]');
    const lanes = page.locator('[data-testid=lane]');
    expect(await lanes.allTextContents()).toEqual(expect.arrayContaining(['analyse', 'branch-1', 'branch-2', 'branch-3']));
    expect(await page.locator('[data-testid=lane][title^="supervisor/analyse/branch-2"]').textContent()).toBe('branch-2');
    // A branch's lane opens its node's drawer at that branch.
    await page.click('[data-testid=lane][title^="supervisor/analyse/branch-2"]');
    const focused = page.locator('[data-testid=node-drawer][data-node=analyse] [data-testid=execution].focus');
    await focused.waitFor();
    expect(await focused.getAttribute('data-actor')).toBe('supervisor/analyse/branch-2');
    await page.keyboard.press('Escape');

    const log = await events(swarm);
    // Where the tokens went, node by node, beside the budget.
    const settledBy = (node: string) =>
      log
        .filter((e) => e.type === 'budget.settle' && (e.from === `supervisor/${node}` || e.from.startsWith(`supervisor/${node}/`)))
        .reduce((s, e) => s + (e.payload as { tokens: number }).tokens, 0);
    expect(
      await page
        .locator('[data-testid=spent-by-node] [data-node]')
        .evaluateAll((els) => els.map((e) => [e.getAttribute('data-node'), Number(e.getAttribute('data-tokens'))])),
    ).toEqual(['plan', 'search', 'analyse', 'summarise'].map((n) => [n, settledBy(n)]));

    await page.click('[data-testid=tab-timeline]');
    const starts = log.filter((e) => e.type === 'node.start' || e.type === 'branch.start');
    const calls = log.filter((e) => e.type === 'llm.request' || e.type === 'tool.call');
    const bars = page.locator('[data-testid=timeline-bar][data-kind=node]');
    await expect.poll(() => bars.count()).toBe(starts.length);
    expect(await bars.evaluateAll((els) => els.map((e) => e.getAttribute('data-node')))).toEqual(starts.map((e) => (e.payload as { node: string }).node));
    expect(await page.locator('[data-testid=timeline-bar]:not([data-kind=node])').count()).toBe(calls.length);
    // A row per actor: each node, and each branch of the swarm node.
    expect(await page.locator('[data-testid=timeline-row]').evaluateAll((els) => els.map((e) => e.getAttribute('data-actor')))).toEqual([
      'supervisor/plan',
      'supervisor/search',
      'supervisor/analyse',
      'supervisor/analyse/branch-1',
      'supervisor/analyse/branch-2',
      'supervisor/analyse/branch-3',
      'supervisor/summarise',
    ]);
    await shot(page, 'timeline');

    // A tool call's bar opens its node's drawer: the call with its arguments and result.
    await page.click('[data-testid=timeline-bar][data-kind=tool]');
    const drawer = page.locator('[data-testid=node-drawer][data-node=search]');
    await drawer.waitFor();
    const call = log.find((e) => e.type === 'tool.call')!.payload as { args: { query: string } };
    const result = log.find((e) => e.type === 'tool.result')!.payload as { result: { note: string } };
    expect(await drawer.locator('[data-testid=tool-args]').textContent()).toContain(call.args.query);
    expect(await drawer.locator('[data-testid=tool-result]').textContent()).toContain(result.result.note);
    expect(await drawer.locator('[data-testid=answer-tool-call]').first().textContent()).toContain('web_search');
    await page.keyboard.press('Escape');
  });

  it('does not count the time a run slept waiting for an approval on its wall-clock gauge', async () => {
    const { id } = await post<{ id: string }>('/runs', { graph: 'triage-with-approval', input: { intent: 'refund' } });
    expect((await finished(id)).status).toBe('waiting');
    await post(`/runs/${id}/signal`, { node: 'refund', waitId: 'approval/refund/1', payload: { approved: true, amount: 5 } });
    for (let run = await api<{ status: string }>(`/runs/${id}`); run.status !== 'succeeded'; run = await api(`/runs/${id}`)) {
      expect(ENDED.filter((s) => s !== 'waiting')).not.toContain(run.status);
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.goto(`${server.url}/#/runs/${id}`);
    await runPage(page, '[data-ended=succeeded]');
    const log = await events(id);
    const resumed = log.find((e) => e.type === 'run.resumed')!.payload as { pausedMs: number; wallClockPaused: boolean };
    expect(resumed.wallClockPaused).toBe(true);
    const start = Date.parse(log.find((e) => e.type === 'run.started')!.time);
    const end = Date.parse(log.at(-1)!.time);
    const gauge = page.locator('[data-testid="gauge-wallClockSec"]');
    // The run's time less the time it slept, as the budget counts it.
    expect(Number(await gauge.getAttribute('data-used'))).toBeCloseTo((end - start - resumed.pausedMs) / 1000, 6);
    expect(Number(await gauge.getAttribute('data-used'))).toBeLessThan((end - start) / 1000);
    // The same figure as the API's (and so ao show's clock line).
    const view = await api<{ budgetUsage: { wallClock: { usedMs: number; pausedMs: number } } }>(`/runs/${id}`);
    expect(view.budgetUsage.wallClock.pausedMs).toBe(resumed.pausedMs);
    expect(Number(await gauge.getAttribute('data-used'))).toBeCloseTo(view.budgetUsage.wallClock.usedMs / 1000, 6);
  });

  it('compares a fork with changed instructions with its original, marking the first divergence and the outputs that differ', async () => {
    const { checkpoints } = await api<{ checkpoints: Array<{ step: number; node: string | null }> }>(`/runs/${critique}/checkpoints`);
    const step = checkpoints.find((c) => c.node === 'outline')!.step;
    const fork = await post<{ id: string }>(`/runs/${critique}/replay`, {
      fromStep: step,
      mode: 'live',
      overrides: { nodes: { draft: { instructions: 'Write the draft as a numbered list.' } } },
    });
    expect((await finished(fork.id)).status).toBe('succeeded');
    const diff = await api<{ first: { actor: string }; nodes: Array<{ node: string }> }>(`/runs/${critique}/diff/${fork.id}`);
    expect(diff.first.actor).toBe('supervisor/draft');

    // From the fork's page to the comparison.
    await page.goto(`${server.url}/#/runs/${fork.id}`);
    await runPage(page, '[data-ended=succeeded]');
    await page.click('[data-testid=compare-link]');
    await page.waitForURL(new RegExp(`#/compare/${critique}/${fork.id}$`));
    await page.locator('[data-testid=compare][data-ready=true]').waitFor();
    const first = page.locator('[data-testid=first-divergence]');
    expect(await first.getAttribute('data-actor')).toBe('supervisor/draft');
    // Where they part is the new instructions' first effect: the draft's first request (its budget request, its prompt).
    expect(await first.textContent()).toMatch(/^First divergence: supervisor\/draft/);
    expect(await page.locator('[data-testid=fork-overrides]').textContent()).toContain('Write the draft as a numbered list.');
    // Aligned by actor: outline is the same in both, draft is where they part.
    const rows = page.locator('[data-testid=compare-row]');
    expect(await rows.evaluateAll((els) => els.map((e) => [e.getAttribute('data-actor'), e.getAttribute('data-first')]))).toEqual(
      expect.arrayContaining([
        ['supervisor/outline', 'false'],
        ['supervisor/draft', 'true'],
      ]),
    );
    expect(await page.locator('[data-testid=compare-row][data-actor="supervisor/outline"]').getAttribute('data-differs')).toBe('false');
    expect(await page.locator('[data-testid=compare-row][data-actor="supervisor/draft"]').getAttribute('data-differs')).toBe('true');
    expect(await page.locator('[data-testid=compare-row][data-first=true]').count()).toBe(1);
    expect(await page.locator('[data-testid=node-diff]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')))).toEqual(
      diff.nodes.map((n) => n.node),
    );
    expect(diff.nodes.map((n) => n.node)).toContain('draft');
    await shot(page, 'compare-fork');
  });
});
