import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, ToolRegistry } from '@ao/runtime';
import { PROCESS_TEST_MS, runCli } from './process.js';

const CHANGED_TRIAGE = fileURLToPath(new URL('./fixtures/changed-triage.ts', import.meta.url));

/** A small well-formedness check of XML (nesting, quoted attributes, known entities): enough to catch a broken report. */
function wellFormedXml(text: string): { root: string; tags: Array<{ name: string; attrs: Record<string, string> }> } {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tags: Array<{ name: string; attrs: Record<string, string> }> = [];
  let root = '';
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const text = body.slice(i, lt === -1 ? body.length : lt);
    for (const ent of text.match(/&[^;\s]*;?/g) ?? []) if (!/^&(amp|lt|gt|quot|apos|#\d+|#x[\da-f]+);$/i.test(ent)) throw new Error(`bad entity ${ent}`);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    if (!m) throw new Error(`malformed tag at ${lt}: ${body.slice(lt, lt + 40)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`);
    } else {
      if (!stack.length && root) throw new Error('two root elements');
      root ||= name!;
      const attrs = Object.fromEntries([...attrText!.matchAll(/([\w.-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
      tags.push({ name: name!, attrs });
      if (!selfClose) stack.push(name!);
    }
    i = tag.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, tags };
}

describe('ao verify', () => {
  let dir: string;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-verify-'));
    env = { AO_DATA_DIR: dir, AO_LOG_LEVEL: 'silent' };
    // A store of example runs, recorded by an engine of this checkout; closed before the CLI opens it.
    const store = await openPgliteStore({ dataDir: join(dir, 'pglite') });
    const tools = new ToolRegistry();
    for (const t of builtinTools) tools.register(t);
    const engine = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => new OfflineLlm(),
      tools,
      graphs: exampleGraphs as readonly GraphBuilder<unknown>[],
      sweepIntervalMs: 0,
    });
    const run = async (name: string, graph: string, input: unknown) => {
      const r = await engine.waitForRun((await engine.startRun({ graph, input })).id);
      expect(r.status).toBe('succeeded');
      ids[name] = r.id;
    };
    await run('refund-1', 'triage', { intent: 'refund', order: 'A-1' });
    await run('question', 'triage', { intent: 'question' });
    await run('refund-2', 'triage', { intent: 'refund', order: 'A-2' });
    await run('swarm', 'research-swarm', { topic: 'actor systems' });
    // Runs that waited for a person: their answers and clock times are served from their logs.
    for (const [name, approved] of [
      ['approved', true],
      ['rejected', false],
    ] as const) {
      const { id } = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: `ch_${name}` } });
      for (let r = await store.getRun(id); r?.status !== 'waiting'; r = await store.getRun(id)) await new Promise((res) => setTimeout(res, 20));
      await engine.signal(id, { node: 'refund', payload: { approved } });
      for (let r = await store.getRun(id); r?.status !== 'succeeded'; r = await store.getRun(id)) await new Promise((res) => setTimeout(res, 20));
      ids[name] = id;
    }
    await run('critique', 'draft-critique', { brief: 'a note on durable agents' });
    await engine.shutdown();
    await store.close();
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'replays every finished run of the store against this checkout: one line each, identical, and exits 0',
    async () => {
      const res = await runCli(['verify'], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const lines = res.stdout.trim().split('\n');
      expect(lines).toHaveLength(8);
      for (const id of Object.values(ids)) expect(lines.filter((l) => l.startsWith(`✔ identical  ${id}  `))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(/^verified 7 runs in [\d.]+ m?s: 7 identical, 0 diverged$/);
      // Verifying wrote nothing to the store: it still holds the seven runs and nothing else.
      const again = await runCli(['verify', '--json'], env);
      expect(JSON.parse(again.stdout).summary.runs).toBe(7);
    },
    PROCESS_TEST_MS,
  );

  it(
    "after an example's instructions changed through AO_GRAPHS, exits non-zero naming the first divergence of each affected run",
    async () => {
      const res = await runCli(['verify'], { ...env, AO_GRAPHS: CHANGED_TRIAGE });
      expect(res.stderr).toBe('');
      expect(res.code).toBe(1);
      const out = res.stdout;
      for (const name of ['refund-1', 'refund-2']) {
        expect(out).toMatch(
          new RegExp(
            `^✘ diverged  ${ids[name]}  triage  at step \\d+, actor supervisor/refund: llm\\.request → llm\\.request  \\(graph version [0-9a-f]{16} → [0-9a-f]{16}\\)$`,
            'm',
          ),
        );
      }
      // The readable diff of the prompt, under each diverged run.
      expect(out.match(/^ {4}llm\.request changed:$/gm)).toHaveLength(2);
      expect(out).toMatch(/Refund the customer charge\{\+, and apologise\+\}\.|\+ Refund the customer charge, and apologise\./);
      // A triage run that never reached the refund node decides as before: the changed graph still reproduces it.
      expect(out).toMatch(new RegExp(`^✔ identical  ${ids.question}  triage  .*\\(graph version [0-9a-f]{16} → [0-9a-f]{16}\\)$`, 'm'));
      expect(out).toMatch(new RegExp(`^✔ identical  ${ids.swarm}  research-swarm  `, 'm'));
      expect(out.trim().split('\n').at(-1)).toMatch(/^verified 7 runs in .*: 5 identical, 2 diverged$/);
    },
    PROCESS_TEST_MS,
  );

  it(
    '--json gives every verdict and the summary; --graph, --limit and --status select the runs',
    async () => {
      const res = await runCli(['verify', '--json', '--graph', 'triage', '--limit', '2'], { ...env, AO_GRAPHS: CHANGED_TRIAGE });
      expect(res.code).toBe(1);
      const report = JSON.parse(res.stdout) as { runs: Array<Record<string, unknown>>; summary: Record<string, number> };
      expect(report.summary).toMatchObject({ runs: 2, identical: 1, diverged: 1, errors: 0 });
      expect(typeof report.summary.ms).toBe('number');
      // Newest first: the last two triage runs.
      expect(report.runs.map((r) => r.run)).toEqual([ids['refund-2'], ids.question]);
      const [diverged, identical] = report.runs;
      expect(diverged).toMatchObject({
        run: ids['refund-2'],
        graph: 'triage',
        status: 'succeeded',
        outcome: 'diverged',
        version: { recorded: expect.stringMatching(/^[0-9a-f]{16}$/), current: expect.stringMatching(/^[0-9a-f]{16}$/), compatible: false },
        divergence: {
          step: expect.any(Number),
          actor: 'supervisor/refund',
          expected: { type: 'llm.request' },
          actual: { type: 'llm.request' },
          diff: expect.arrayContaining(['llm.request changed:']),
        },
      });
      expect(identical).toMatchObject({ run: ids.question, outcome: 'identical', events: expect.any(Number), ms: expect.any(Number) });
      expect(identical).not.toHaveProperty('divergence');
      const none = await runCli(['verify', '--json', '--status', 'failed'], env);
      expect(none.code).toBe(0);
      expect(JSON.parse(none.stdout)).toEqual({ runs: [], summary: { runs: 0, identical: 0, diverged: 0, errors: 0, ms: expect.any(Number) } });
      const recent = await runCli(['verify', '--since', '1h', '--limit', '1'], env);
      expect(recent.stdout).toMatch(new RegExp(`^✔ identical  ${ids.critique}  draft-critique`, 'm'));
      const bad = await runCli(['verify', '--since', 'yesterday'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/AO_VALIDATION.*--since/);
    },
    PROCESS_TEST_MS,
  );

  it(
    '--junit writes a valid JUnit XML report with one test case per run, a divergence a failure with its diff',
    async () => {
      const file = join(dir, 'verify.xml');
      const res = await runCli(['verify', '--junit', file], { ...env, AO_GRAPHS: CHANGED_TRIAGE });
      expect(res.code).toBe(1);
      const text = await readFile(file, 'utf8');
      const { root, tags } = wellFormedXml(text);
      expect(root).toBe('testsuites');
      expect(tags.find((t) => t.name === 'testsuite')?.attrs).toMatchObject({ tests: '7', failures: '2', errors: '0' });
      const cases = tags.filter((t) => t.name === 'testcase');
      expect(cases.map((c) => c.attrs.name).sort()).toEqual(Object.values(ids).sort());
      expect(tags.filter((t) => t.name === 'failure')).toHaveLength(2);
      expect(tags.find((t) => t.name === 'failure')?.attrs.type).toBe('AO_REPLAY_DIVERGED');
      expect(text).toContain('llm.request changed:');
    },
    PROCESS_TEST_MS,
  );
});
