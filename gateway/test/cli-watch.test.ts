import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVELOPE_TYPES, openPgliteStore } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import type { Client } from '../src/cli/client.js';
import { progressLine, watchRun } from '../src/cli/watch.js';
import { parseInstant } from '../src/cli/when.js';
import { aoArgs, freePort, PROCESS_TEST_MS, ROOT, runCli, startServer } from './process.js';

const json = async <T>(url: string, init?: RequestInit) => (await fetch(url, init)).json() as Promise<T>;
const post = (url: string, body: unknown) =>
  json<{ id: string }>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** `ao <args>` with its output read as it comes: `until(re)` resolves once stdout matches. */
async function follow(args: string[], env: Record<string, string>) {
  const p = spawn(process.execPath, [...(await aoArgs(env)), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  p.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      if (!w.re.test(stdout)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return {
    proc: p,
    exited,
    output: () => ({ stdout, stderr }),
    until: (re: RegExp) => (re.test(stdout) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }))),
  };
}

const envelope = (seq: number, type: string, payload: Record<string, unknown>): Envelope => ({
  id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
  runId: 'r',
  seq,
  from: 'supervisor' as Envelope['from'],
  to: 'supervisor' as Envelope['to'],
  type,
  payload,
  causationId: null,
  trace: null,
  time: new Date(Date.UTC(2026, 11, 4, 12, 0, seq)).toISOString(),
});

describe('ao watch: a line per envelope', () => {
  it('decides for every known envelope type (shown or quiet), shows any shape, and skips a type it does not know', () => {
    const shown = ENVELOPE_TYPES.filter((t) => progressLine(envelope(1, t, {}), 0) !== undefined);
    expect(shown).toEqual(expect.arrayContaining(['run.started', 'node.completed', 'wait.resolved', 'run.finished']));
    expect(shown).not.toContain('llm.request');
    expect(progressLine(envelope(2, 'node.skipped', { node: 'a', reason: 'route' }), 0)).toContain('skipped: route');
    expect(progressLine(envelope(3, 'made.up', { node: 'a' }), 0)).toBeUndefined();
  });
});

describe('ao watch: following a run', () => {
  it(
    'follows a run that is still going: prints events as they are written and returns once it has ended',
    async () => {
      // The log grows between reads: the run is running for the first reads, then ends.
      const log = [
        envelope(1, 'run.started', { graph: 'g', version: 'v' }),
        envelope(2, 'node.start', { node: 'a', iteration: 1, attempt: 1 }),
        envelope(3, 'node.completed', { node: 'a', usage: { totalTokens: 7 } }),
        envelope(4, 'run.finished', { status: 'succeeded', usage: { totalTokens: 7, toolCalls: 0 } }),
      ];
      let written = 1;
      let reads = 0;
      const client = {
        async events(_id: string, after: number) {
          reads++;
          if (reads % 2 === 0 && written < log.length) written++;
          return log.slice(after, written);
        },
        async getRun() {
          const done = written === log.length;
          return { status: done ? 'succeeded' : 'running', owner: done ? null : 'n1', lastSeq: written, waits: [] };
        },
      } as unknown as Client;
      const lines: string[] = [];
      const status = await watchRun(client, 'r', (l) => lines.push(l), { pollMs: 1 });
      expect(status).toBe('succeeded');
      expect(lines).toHaveLength(4);
      expect(lines[0]).toMatch(/run started: g/);
      expect(lines[2]).toMatch(/✔ a\s+succeeded {2}7 tokens/);
      expect(lines[3]).toMatch(/run succeeded: 7 tokens/);
    },
    PROCESS_TEST_MS,
  );

  it(
    'follows a run through a wait for a person until it is answered elsewhere, by an id prefix, over HTTP; exit code 0',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ao-watch-'));
      const server = await startServer({ AO_DATA_DIR: dir });
      try {
        const { id } = await post(`${server.url}/runs`, { graph: 'triage-with-approval', input: { intent: 'refund' } });
        for (
          let r = await json<{ status: string; owner: string | null }>(`${server.url}/runs/${id}`);
          r.status !== 'waiting' || r.owner !== null;
          r = await json(`${server.url}/runs/${id}`)
        ) {
          await new Promise((res) => setTimeout(res, 100));
        }
        const w = await follow(['watch', id.slice(0, 8)], { AO_URL: server.url });
        await w.until(/answer: ao signal .* --node refund --approve/);
        expect(w.output().stdout).toMatch(new RegExp(`^run ${id} \\(triage-with-approval\\) waiting via ${server.url}`));
        expect(
          (
            await fetch(`${server.url}/runs/${id}/signal`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ node: 'refund', payload: { approved: true } }),
            })
          ).status,
        ).toBe(202);
        expect(await w.exited).toBe(0);
        const { stdout, stderr } = w.output();
        expect(stderr).toBe('');
        expect(stdout).toMatch(/✔ refund\s+succeeded/);
        expect(stdout).toMatch(/run succeeded/);
        expect(stdout).toMatch(/status: succeeded\n$/);
      } finally {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
    PROCESS_TEST_MS,
  );

  it(
    'embedded, watches a finished run by prefix and exits with its status: 0 succeeded, 1 failed, 3 budget_exceeded, 4 cancelled',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ao-watch-'));
      try {
        const store = await openPgliteStore({ dataDir: join(dir, 'pglite') });
        const made = ['succeeded', 'failed', 'budget_exceeded', 'cancelled'] as const;
        for (const [i, status] of made.entries()) {
          const id = `${i}aaaaaaa-0000-4000-8000-000000000000`;
          await store.createRun({ id, graph: 'triage', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: null, leaseMs: 0 });
          await store.commit({ runId: id, events: [], patch: { status, finishedAt: new Date().toISOString() } });
        }
        await store.close();
        const env = { AO_DATA_DIR: dir, PORT: String(await freePort()) };
        for (const [i, status] of made.entries()) {
          const res = await runCli(['watch', `${i}aaaaaaa`], env);
          expect(res.stderr, status).toBe('');
          expect(res.stdout, status).toMatch(new RegExp(`status: ${status}\\n$`));
          expect(res.code, status).toBe([0, 1, 3, 4][i]);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    PROCESS_TEST_MS,
  );

  it(
    'exits quietly (code 0, nothing on stderr) when its reader goes away',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ao-watch-'));
      const server = await startServer({ AO_DATA_DIR: dir });
      try {
        const { id } = await post(`${server.url}/runs`, { graph: 'research-swarm', input: { topic: 'pipes' } });
        const w = await follow(['watch', id], { AO_URL: server.url });
        await w.until(/run started/);
        w.proc.stdout.destroy();
        expect(await w.exited).toBe(0);
        expect(w.output().stderr).toBe('');
      } finally {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
    PROCESS_TEST_MS,
  );
});

describe('ao runs and run ids on the command line', () => {
  it('takes an 8-character id prefix wherever a run id goes, and searches runs by graph, status, time and id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-cli-ids-'));
    try {
      const env = { AO_DATA_DIR: dir, PORT: String(await freePort()) };
      const first = await runCli(['run', 'triage', '--input', '{"intent":"refund"}'], env);
      const id = /run ([0-9a-f-]{36})/.exec(first.stdout)![1]!;
      const show = await runCli(['show', id.slice(0, 8)], env);
      expect(show.stderr).toBe('');
      expect(show.stdout).toMatch(new RegExp(`^run ${id}\\n {2}status +succeeded`));
      const short = await runCli(['show', id.slice(0, 7)], env);
      expect([short.code, short.stderr]).toEqual([1, expect.stringMatching(/^error AO_VALIDATION: .*at least 8 characters/)]);

      const store = await openPgliteStore({ dataDir: join(dir, 'pglite') });
      for (const n of [1, 2]) {
        await store.createRun({
          id: `beefbeef-0000-4000-8000-00000000000${n}`,
          graph: 'draft-critique',
          graphVersion: 'v',
          input: {},
          budget: {},
          nodes: {},
          traceId: null,
          owner: null,
          leaseMs: 0,
        });
      }
      await store.commit({ runId: 'beefbeef-0000-4000-8000-000000000001', events: [], patch: { status: 'failed' } });
      await store.close();
      const ambiguous = await runCli(['show', 'beefbeef'], env);
      expect(ambiguous.code).toBe(1);
      expect(ambiguous.stderr).toMatch(/^error AO_RUN_ID_AMBIGUOUS: run id prefix "beefbeef" matches 2 runs: /);
      for (const n of [1, 2]) expect(ambiguous.stderr).toContain(`beefbeef-0000-4000-8000-00000000000${n}`);

      const ids = async (...args: string[]) => {
        const res = await runCli(['runs', ...args], env);
        expect(res.stderr, args.join(' ')).toBe('');
        return res.stdout
          .split('\n')
          .slice(1)
          .filter(Boolean)
          .map((l) => l.split(/\s+/)[0])
          .sort();
      };
      expect(await ids('--graph', 'triage')).toEqual([id]);
      expect(await ids('--graph', 'draft-critique', '--status', 'failed')).toEqual(['beefbeef-0000-4000-8000-000000000001']);
      expect(await ids('--id', 'BEEF', '--since', '1h')).toEqual(['beefbeef-0000-4000-8000-000000000001', 'beefbeef-0000-4000-8000-000000000002']);
      expect(await ids('--since', '2999-01-01')).toEqual([]);
      expect(await ids('--until', '2000-01-01')).toEqual([]);
      const bad = await runCli(['runs', '--since', 'yesterday'], env);
      expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/^error AO_VALIDATION: --since must be/)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it(
    'reads --since and --until as a duration back from now or a date (UTC without an offset)',
    () => {
      const now = Date.UTC(2026, 11, 4, 12, 0, 0);
      expect(parseInstant('30m', 'since', now)).toBe('2026-12-04T11:30:00.000Z');
      expect(parseInstant('7d', 'since', now)).toBe('2026-11-27T12:00:00.000Z');
      expect(parseInstant('2026-12-01', 'since', now)).toBe('2026-12-01T00:00:00.000Z');
      expect(parseInstant('2026-12-01T08:30', 'until', now)).toBe('2026-12-01T08:30:00.000Z');
      expect(parseInstant('2026-12-01T08:30:00+01:00', 'until', now)).toBe('2026-12-01T07:30:00.000Z');
      expect(() => parseInstant('soon', 'until', now)).toThrow(/--until must be/);
    },
    PROCESS_TEST_MS,
  );
});
