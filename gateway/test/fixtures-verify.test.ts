import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleGraphs } from '@ao/graphs';
import { parseRunFile } from '@ao/runtime';
import { RecordingNotVerified, verifyRecording } from '@ao/gateway/testing';
import { graphs as changedTriage } from './fixtures/changed-triage.js';
import { graphs as fixtureGraphs } from './fixtures/fixture-graphs.js';
import { FIXTURE_CASES, FIXTURES_DIR } from './record-fixtures.js';

/**
 * The recordings of the example graphs under graphs/fixtures/ replay identically against this
 * checkout. A change to an example's prompts, routing or tools fails here with the diff; if it is
 * meant, re-record them (`pnpm fixtures:record`) and commit the new files with the change. Two
 * graphs recorded only for the fixtures (./fixtures/fixture-graphs.ts) add the waits no example
 * has: a question asked mid-node, and a grant at a soft budget limit.
 */

const files = readdirSync(FIXTURES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();
const recordings = files.map((f) => ({ name: f, path: join(FIXTURES_DIR, f), file: parseRunFile(readFileSync(join(FIXTURES_DIR, f), 'utf8'), f) }));

describe('recorded fixtures of the example graphs', () => {
  it('cover every example graph, and every way a wait ends: approved, rejected, timed out, a question answered, a budget granted', () => {
    expect(files).toEqual(FIXTURE_CASES.map((c) => c.file).sort());
    expect(new Set(recordings.map((r) => r.file.run.graph))).toEqual(new Set([...exampleGraphs, ...fixtureGraphs].map((g) => g.name)));
    const outcomes = recordings.flatMap((r) =>
      r.file.events
        .filter((e) => e.type === 'wait.resolved')
        .map((e) => e.payload as { kind: string; outcome: { kind: string; payload?: { decision?: string } }; approved?: boolean }),
    );
    expect(outcomes.some((o) => o.outcome.kind === 'signal' && o.approved === true)).toBe(true);
    expect(outcomes.some((o) => o.outcome.kind === 'signal' && o.approved === false)).toBe(true);
    expect(outcomes.some((o) => o.outcome.kind === 'timeout')).toBe(true);
    // A question asked mid-node (its registration in the log) and answered; a soft budget limit granted more.
    expect(recordings.some((r) => r.file.events.some((e) => e.type === 'wait.registered'))).toBe(true);
    expect(outcomes.some((o) => o.kind === 'interrupt' && o.outcome.kind === 'signal')).toBe(true);
    expect(outcomes.some((o) => o.kind === 'budget' && o.outcome.payload?.decision === 'grant')).toBe(true);
    // An approval answered before its wait opened: taken in that step, never slept; the file keeps the checkpoints that say so.
    const early = recordings.find((r) => r.name === 'triage-with-approval-pre-approved.json')!.file;
    expect(early.events.map((e) => e.type)).not.toContain('run.waiting');
    expect(early.events.some((e) => e.type === 'wait.resolved')).toBe(true);
    expect(early.checkpoints.length).toBeGreaterThan(0);
    // Small enough to keep in the repository and read in a diff.
    for (const r of recordings) expect(JSON.stringify(r.file).length, r.name).toBeLessThan(128 * 1024);
  });

  it.each(recordings.map((r) => [r.name, r.path] as const))('%s replays identically against this checkout', async (_name, path) => {
    const verdict = await verifyRecording(path, fixtureGraphs);
    expect(verdict).toMatchObject({ outcome: 'identical' });
    expect(verdict.events).toBeGreaterThan(10);
  });

  it("fails with the readable diff when an example's instructions changed", async () => {
    const refund = recordings.find((r) => r.name === 'triage-refund.json')!;
    const err = await verifyRecording(refund.path, changedTriage).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RecordingNotVerified);
    const e = err as RecordingNotVerified;
    expect(e.verdict).toMatchObject({
      outcome: 'diverged',
      divergence: { actor: 'supervisor/refund', expected: { type: 'llm.request' }, actual: { type: 'llm.request' } },
    });
    expect(e.message).toContain('triage-refund.json: the replay diverged from the recording');
    expect(e.message).toMatch(/✘ diverged {2}[0-9a-f-]{36} {2}triage {2}at step \d+, actor supervisor\/refund: llm\.request → llm\.request/);
    expect(e.message).toContain('llm.request changed:');
    expect(e.message).toMatch(/Refund the customer charge\{\+, and apologise\+\}\.|\+ Refund the customer charge, and apologise\./);
    // A run that never reached the changed node still verifies against the changed graph.
    const question = recordings.find((r) => r.name === 'triage-question.json')!;
    await expect(verifyRecording(question.file, changedTriage)).resolves.toMatchObject({ outcome: 'identical', version: { compatible: false } });
  });
});
