import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, PROCESS_TEST_MS, runCli, startServer } from './process.js';

describe('ao CLI', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'ao-cli-'));
    dirs.push(d);
    return d;
  };

  it(
    'runs a graph with --watch in embedded mode, printing each node live, and lists it after',
    async () => {
      const dir = await tmp();
      const env = { AO_DATA_DIR: dir, PORT: String(await freePort()) };
      const res = await runCli(['run', 'triage', '--input', '{"intent":"refund"}', '--watch'], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/via embedded \(pglite\)/);
      expect(res.stdout).toMatch(/▶ classify\s+started/);
      expect(res.stdout).toMatch(/✔ refund\s+succeeded/);
      expect(res.stdout).toMatch(/⤳ escalate\s+skipped/);
      expect(res.stdout).toMatch(/stripe_refund\(/);
      expect(res.stdout).toMatch(/status: succeeded/);
      const id = /run ([0-9a-f-]{36})/.exec(res.stdout)![1]!;
      const runs = await runCli(['runs'], env);
      const [header, row] = runs.stdout.split('\n');
      expect(header).toMatch(/^ID\s+GRAPH\s+STATUS\s+TOKENS\s+TOOK\s+CREATED$/);
      expect(row).toMatch(new RegExp(`^${id}\\s+triage\\s+succeeded\\s+[\\d,]+\\s+[\\d.]+s\\s+(just now|\\d+[smh] ago)$`));
      const show = await runCli(['show', id, '--events'], env);
      expect(show.stderr).toBe('');
      expect(show.stdout).toMatch(/^ {2}status +succeeded$/m);
      expect(show.stdout).toMatch(/^ {2}graph +triage \(version [0-9a-f]{16}\)$/m);
      expect(show.stdout).toMatch(/^ {2}usage +[\d,]+ \/ 8,000 tokens, \d+ LLM calls, 1 \/ 10 tool calls, 1 \/ 1 stripe_refund calls$/m);
      // The wall clock as the budget counts it, against its 60 s.
      expect(show.stdout).toMatch(/^ {2}clock +[\d.]+s \/ 1m 00s of the wall-clock budget$/m);
      // Nodes in the graph's order, each with its state.
      expect(show.stdout).toMatch(/^nodes\n {2}classify +succeeded +[\d.]+s\n {2}refund +succeeded +[\d.]+s\n {2}escalate +skipped$/m);
      expect(show.stdout).toMatch(/^input\n {2}intent: refund$/m);
      expect(show.stdout).toMatch(/^output\n {2}refund:\n/m);
      expect(show.stdout).toMatch(/^ {4}tool stripe_refund\(/m);
      expect(show.stdout).not.toContain('"graphVersion"');
      expect(show.stdout).toMatch(/run\.finished/);
      const raw = await runCli(['show', id, '--json'], env);
      expect(JSON.parse(raw.stdout)).toMatchObject({ id, status: 'succeeded', graph: 'triage', input: { intent: 'refund' } });
    },
    PROCESS_TEST_MS,
  );

  it(
    'draws each graph edge by edge, conditional and loop edges marked, and shows one graph with its input fields',
    async () => {
      const env = { AO_DATA_DIR: await tmp(), PORT: String(await freePort()) };
      const all = await runCli(['graphs'], env);
      expect(all.stderr).toBe('');
      // triage branches from classify: two conditional edges, not a chain classify -> refund -> escalate.
      expect(all.stdout).toMatch(/^triage {2}version [0-9a-f]{16} {2}3 nodes .*\n {2}classify -\?-> refund\n {2}classify -\?-> escalate\n/m);
      expect(all.stdout).not.toMatch(/refund -.*-> escalate/);
      expect(all.stdout).toMatch(/^ {2}critique -\?-> draft {2}\(loops back\)$/m);
      expect(all.stdout).toMatch(/^ {2}plan +---> search$/m);
      const one = await runCli(['graphs', 'draft-critique'], env);
      expect(one.stdout).toMatch(/^input\n {2}brief {2}string, required, min length 1$/m);
      expect(one.stdout).toMatch(/^ {2}draft +pipeline +default +at most 3 iterations$/m);
      const unknown = await runCli(['graphs', 'nope'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/AO_GRAPH_NOT_FOUND/);
    },
    PROCESS_TEST_MS,
  );

  it(
    'talks to a running gateway over HTTP and watches a swarm run to the end',
    async () => {
      const dir = await tmp();
      const server = await startServer({ AO_DATA_DIR: dir });
      try {
        const res = await runCli(['run', 'research-swarm', '--input', '{"topic":"actors"}', '--watch'], { AO_URL: server.url });
        expect(res.code).toBe(0);
        expect(res.stdout).toContain(`via ${server.url}`);
        for (const n of ['plan', 'search', 'analyse', 'summarise']) expect(res.stdout).toMatch(new RegExp(`✔ ${n}\\s+succeeded`));
        expect(res.stdout).toMatch(/branch 3\/3 started/);
        // One graph over HTTP (GET /graphs/:name): a graph without an input schema says so.
        const triage = await runCli(['graphs', 'triage'], { AO_URL: server.url });
        expect(triage.stdout).toMatch(/^edges\n {2}classify -\?-> refund\n {2}classify -\?-> escalate\n/m);
        expect(triage.stdout).toMatch(/^input\n {2}any JSON value \(the graph has no input schema\)$/m);
      } finally {
        await server.stop();
      }
    },
    PROCESS_TEST_MS,
  );

  it(
    'replays a run from a step over HTTP (recorded: identical), and diffs a fork that changed a prompt',
    async () => {
      const dir = await tmp();
      const server = await startServer({ AO_DATA_DIR: dir });
      try {
        const env = { AO_URL: server.url };
        const first = await runCli(['run', 'triage', '--input', '{"intent":"refund","order":"A-9"}', '--watch'], env);
        const id = /run ([0-9a-f-]{36})/.exec(first.stdout)![1]!;
        const replay = await runCli(['replay', id, '--from-step', '1', '--recorded', '--watch'], env);
        expect(replay.stderr).toBe('');
        expect(replay.code).toBe(0);
        expect(replay.stdout).toMatch(new RegExp(`replays ${id} from step 1 \\(recorded\\)`));
        expect(replay.stdout).toMatch(/status: succeeded/);
        const replayId = /run ([0-9a-f-]{36}) replays/.exec(replay.stdout)![1]!;
        const same = await runCli(['diff', id, replayId], env);
        expect(same.code).toBe(0);
        expect(same.stdout).toMatch(/^identical: \d+ decisions each/);
        const fork = await runCli(
          ['replay', id, '--from-step', '1', '--watch', '--overrides', '{"nodes":{"refund":{"instructions":"Refund politely."}}}'],
          env,
        );
        expect(fork.stdout).toMatch(/\(live, fork\)/);
        const forkId = /run ([0-9a-f-]{36}) replays/.exec(fork.stdout)![1]!;
        const differ = await runCli(['diff', id, forkId], env);
        expect(differ.code).toBe(1);
        expect(differ.stdout).toMatch(/first difference at decision \d+ of .*, actor supervisor\/refund/);
        expect(differ.stdout).toContain('Refund politely.');
        const bad = await runCli(['replay', id, '--from-step', '99'], env);
        expect(bad.code).toBe(1);
        expect(bad.stderr).toMatch(/AO_REPLAY_STEP_OUT_OF_RANGE/);
      } finally {
        await server.stop();
      }
    },
    PROCESS_TEST_MS,
  );

  it(
    'reports bad input with its code and exits non-zero',
    async () => {
      const env = { AO_DATA_DIR: await tmp(), PORT: String(await freePort()) };
      const bad = await runCli(['run', 'triage', '--input', '{oops'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/AO_BAD_JSON/);
      const unknown = await runCli(['run', 'nope'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/AO_GRAPH_NOT_FOUND/);
    },
    PROCESS_TEST_MS,
  );
});
