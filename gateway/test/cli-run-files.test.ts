import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunFile } from '@ao/runtime';
import { PROCESS_TEST_MS, runCli, startServer } from './process.js';
import { FIXTURE_CASES, FIXTURE_GRAPHS, FIXTURES_DIR } from './record-fixtures.js';

const CHANGED_TRIAGE = fileURLToPath(new URL('./fixtures/changed-triage.ts', import.meta.url));
const fixture = (name: string) => join(FIXTURES_DIR, name);
const refund = parseRunFile(await readFile(fixture('triage-refund.json'), 'utf8'));

/** `ao export`, `ao import` and `ao verify <files>`: runs as files from the terminal. */
describe('ao export / ao import / ao verify FILES', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-run-files-'));
    env = { AO_DATA_DIR: join(dir, 'data'), AO_LOG_LEVEL: 'silent' };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'ao import loads a run file into the embedded store; again is AO_RUN_EXISTS; ao export writes it back',
    async () => {
      const imported = await runCli(['import', fixture('triage-refund.json')], env);
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      expect(imported.stdout.trim()).toBe(
        `imported run ${refund.run.id} (triage, succeeded, ${refund.events.length} events, 0 checkpoints) via embedded (pglite)`,
      );
      const again = await runCli(['import', fixture('triage-refund.json')], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^error AO_RUN_EXISTS: run [0-9a-f-]{36} is already stored/);
      const shown = await runCli(['show', refund.run.id, '--json'], env);
      expect(JSON.parse(shown.stdout)).toMatchObject({ id: refund.run.id, status: 'succeeded', output: refund.run.output });

      const out = join(dir, 'out.json');
      const exported = await runCli(['export', refund.run.id, '-o', out], env);
      expect(exported.code).toBe(0);
      expect(exported.stdout.trim()).toBe(`exported run ${refund.run.id} (triage, succeeded, ${refund.events.length} events, 0 checkpoints) to ${out}`);
      const back = parseRunFile(await readFile(out, 'utf8'));
      expect({ ...back, exportedAt: null }).toEqual({ ...refund, exportedAt: null });
      // Without -o, the document on stdout.
      const piped = await runCli(['export', refund.run.id], env);
      expect(parseRunFile(piped.stdout).events).toEqual(refund.events);

      // Under a new id, next to the original: a run of its own that replays recorded (its envelope ids made again).
      const copyId = randomUUID();
      const copied = await runCli(['import', fixture('triage-refund.json'), '--as', copyId], env);
      expect(copied.stderr).toBe('');
      expect(copied.stdout.trim()).toBe(`imported run ${copyId} (triage, succeeded, ${refund.events.length} events, 0 checkpoints) via embedded (pglite)`);
      const copy = parseRunFile((await runCli(['export', copyId], env)).stdout);
      expect(copy.events.map((e) => e.type)).toEqual(refund.events.map((e) => e.type));
      expect(copy.events.some((e) => refund.events.some((o) => o.id === e.id))).toBe(false);
      const replayed = await runCli(['replay', copyId, '--from-step', '0', '--recorded', '--watch'], env);
      expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0);
      const badId = await runCli(['import', fixture('triage-refund.json'), '--as', 'copy-of-refund'], env);
      expect(badId.code).toBe(1);
      expect(badId.stderr).toMatch(/^error AO_VALIDATION: .*uuid/);

      const bad = join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify({ ...refund, version: 7 }));
      const refused = await runCli(['import', bad], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error AO_RUN_FILE_INVALID: .*bad\.json: run file version 7; this code reads version 1 \(field: version\)/);
    },
    PROCESS_TEST_MS,
  );

  it(
    'ao verify FILE DIR replays run files in process: one line each, naming the file, and exits 0',
    async () => {
      // The graphs recorded only for the fixtures come from AO_GRAPHS, as a user's graphs would.
      const res = await runCli(['verify', fixture('triage-refund.json'), FIXTURES_DIR], { AO_GRAPHS: FIXTURE_GRAPHS });
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const lines = res.stdout.trim().split('\n');
      const n = FIXTURE_CASES.length + 1;
      expect(lines).toHaveLength(n + 1);
      expect(lines.filter((l) => l.startsWith(`✔ identical  ${refund.run.id}  triage  ${fixture('triage-refund.json')}  `))).toHaveLength(2);
      for (const c of FIXTURE_CASES)
        expect(
          lines.some((l) => l.startsWith('✔ identical  ') && l.includes(`  ${join(FIXTURES_DIR, c.file)}  `)),
          c.file,
        ).toBe(true);
      expect(lines.at(-1)).toMatch(new RegExp(`^verified ${n} runs in [\\d.]+ m?s: ${n} identical, 0 diverged$`));
    },
    PROCESS_TEST_MS,
  );

  it(
    'with a changed example, exits 1 with the diff; --json and --junit as in store mode; a bad file is not verified',
    async () => {
      const d = join(dir, 'files');
      await mkdir(d, { recursive: true });
      await copyFile(fixture('triage-refund.json'), join(d, 'a.json'));
      await copyFile(fixture('triage-question.json'), join(d, 'b.json'));
      await writeFile(join(d, 'c.json'), '{"format":"ao-run"');
      const junit = join(dir, 'verify.xml');
      const res = await runCli(['verify', d, '--json', '--junit', junit], { AO_GRAPHS: CHANGED_TRIAGE });
      expect(res.code).toBe(1);
      const report = JSON.parse(res.stdout) as { runs: Array<Record<string, unknown>>; summary: Record<string, number> };
      expect(report.summary).toMatchObject({ runs: 3, identical: 1, diverged: 1, errors: 1 });
      expect(report.runs[0]).toMatchObject({
        run: refund.run.id,
        file: join(d, 'a.json'),
        outcome: 'diverged',
        divergence: { actor: 'supervisor/refund', diff: expect.arrayContaining(['llm.request changed:']) },
      });
      expect(report.runs[1]).toMatchObject({ file: join(d, 'b.json'), outcome: 'identical' });
      expect(report.runs[2]).toMatchObject({ file: join(d, 'c.json'), outcome: 'error', error: { code: 'AO_RUN_FILE_INVALID' } });
      const xml = await readFile(junit, 'utf8');
      expect(xml).toMatch(/<testsuite name="ao verify" tests="3" failures="1" errors="1"/);
      expect(xml).toContain('llm.request changed:');

      const text = await runCli(['verify', join(d, 'a.json')], { AO_GRAPHS: CHANGED_TRIAGE });
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(
        new RegExp(`^✘ diverged  ${refund.run.id}  triage  ${join(d, 'a.json')}  at step \\d+, actor supervisor/refund: llm\\.request → llm\\.request`, 'm'),
      );
      expect(text.stdout).toMatch(/Refund the customer charge\{\+, and apologise\+\}\.|\+ Refund the customer charge, and apologise\./);

      const mixed = await runCli(['verify', d, '--graph', 'triage'], {});
      expect(mixed.code).toBe(1);
      expect(mixed.stderr).toMatch(/AO_VALIDATION: --graph selects runs of a store/);
      const missing = await runCli(['verify', join(dir, 'nope.json')], {});
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/AO_VALIDATION: cannot read .*nope\.json/);
    },
    PROCESS_TEST_MS,
  );

  it('with a server on the data directory, ao import and ao export go through its HTTP API', async () => {
    const serverDir = join(dir, 'served');
    const server = await startServer({ AO_DATA_DIR: serverDir });
    try {
      const e = { AO_DATA_DIR: serverDir, AO_LOG_LEVEL: 'silent' };
      const imported = await runCli(['import', fixture('research-swarm.json')], e);
      expect(imported.stderr).toBe('');
      const swarm = parseRunFile(await readFile(fixture('research-swarm.json'), 'utf8'));
      expect(imported.stdout.trim()).toBe(
        `imported run ${swarm.run.id} (research-swarm, succeeded, ${swarm.events.length} events, 0 checkpoints) via ${server.url}`,
      );
      const exported = await runCli(['export', swarm.run.id], e);
      expect(exported.code).toBe(0);
      expect(parseRunFile(exported.stdout).events).toEqual(swarm.events);
      const again = await runCli(['import', fixture('research-swarm.json')], e);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^error AO_RUN_EXISTS/);
      // POST /runs/import?as=ID: renamed by the server, against its graphs.
      const copyId = randomUUID();
      const copied = await runCli(['import', fixture('research-swarm.json'), '--as', copyId], e);
      expect(copied.stderr).toBe('');
      expect(copied.stdout.trim()).toBe(`imported run ${copyId} (research-swarm, succeeded, ${swarm.events.length} events, 0 checkpoints) via ${server.url}`);
      const replayed = await runCli(['replay', copyId, '--from-step', '0', '--recorded', '--watch'], e);
      expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0);
    } finally {
      await server.stop();
    }
  }, 180_000);
});
