/**
 * What one Postgres and one NATS server sustain here, for the on-paper capacity in DESIGN.md
 * ("Scaling out: how far one database goes"). `node --import tsx bench/src/scale/capacity.ts`.
 *
 * Postgres: sessions each committing, as fast as they can, what a journal commit writes (one
 * `journal` row of ~1.5 KB and an update of its run's row), at 1 to 64 sessions at once: the
 * server's group commit lets concurrent commits share one WAL flush, so commits/s grows with the
 * sessions until the CPU or the flush is the limit. NATS: the JetStream bus publishing one-commit
 * messages (publishCommit, acknowledged by the server) from as many concurrent publishers.
 * The CPU of `postgres` and `nats-server` during each is read from /proc, as the cluster bench does.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connectNatsBus, newEnvelopeId } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { dropNatsPrefix, natsPrefix, openSession } from '@ao/runtime/testing';
import { createScratchDatabase } from '../postgres.js';
import { CLUSTER_NATS_URL } from '../cluster.js';
import { CpuMeter, processesNamed } from './proc-load.js';

const SEC = Number(process.env.CAPACITY_SEC ?? 5);
const LEVELS = (process.env.CAPACITY_SESSIONS ?? '1,8,32,64').split(',').map(Number);
const BODY = JSON.stringify({ envelopes: Array.from({ length: 4 }, (_, i) => ({ type: 'llm.response', i, text: 'x'.repeat(300) })) });

async function meter(comm: string): Promise<CpuMeter> {
  return CpuMeter.of((await processesNamed(comm)).map((p) => p.pid));
}

async function postgres(): Promise<void> {
  const db = await createScratchDatabase();
  if (!db.ok) throw new Error(db.reason);
  const setup = await openSession(db.url);
  await setup.query('create table runs (id text primary key, last_seq int not null, updated_at timestamptz not null)');
  await setup.query('create table journal (id uuid primary key, run_id text not null, seq int not null, body json not null, unique (run_id, seq))');
  const [sc] = await setup.query(
    "select current_setting('synchronous_commit') as s, current_setting('commit_delay') as d, current_setting('wal_sync_method') as m",
  );
  console.log(`postgres: synchronous_commit=${String(sc!.s)} commit_delay=${String(sc!.d)} wal_sync_method=${String(sc!.m)}`);
  try {
    for (const n of LEVELS) {
      const sessions = await Promise.all(Array.from({ length: n }, () => openSession(db.url)));
      const runs = sessions.map(() => randomUUID());
      for (const r of runs) await setup.query('insert into runs values ($1, 0, now())', [r]);
      const cpu = await meter('postgres');
      const end = performance.now() + SEC * 1000;
      let commits = 0;
      await Promise.all(
        sessions.map(async (s, i) => {
          let seq = 0;
          while (performance.now() < end) {
            seq += 1;
            await s.query('begin');
            await s.query('insert into journal values ($1, $2, $3, $4)', [randomUUID(), runs[i], seq, BODY]);
            await s.query('update runs set last_seq = $2, updated_at = now() where id = $1', [runs[i], seq]);
            await s.query('commit');
            commits += 1;
          }
        }),
      );
      console.log(`postgres ${n} session(s): ${(commits / SEC).toFixed(0)} commits/s, postgres CPU ${(((await cpu.used()) / SEC) * 100).toFixed(0)} %`);
      await Promise.all(sessions.map((s) => s.end()));
    }
  } finally {
    await setup.end();
    await db.drop();
  }
}

async function nats(): Promise<void> {
  const prefix = natsPrefix('cap');
  const bus = await connectNatsBus({ url: CLUSTER_NATS_URL, prefix, name: 'capacity' });
  const env = (runId: string, seq: number): Envelope => ({
    id: newEnvelopeId(),
    runId,
    seq,
    from: 'supervisor' as Envelope['from'],
    to: 'supervisor/a' as Envelope['to'],
    type: 'node.completed',
    payload: { text: 'x'.repeat(300) },
    causationId: null,
    trace: null,
    time: new Date().toISOString(),
  });
  try {
    for (const n of LEVELS) {
      const cpu = await meter('nats-server');
      const end = performance.now() + SEC * 1000;
      let msgs = 0;
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const run = `cap-${n}-${i}`;
          let seq = 0;
          while (performance.now() < end) {
            await bus.publishCommit!([env(run, ++seq), env(run, ++seq), env(run, ++seq), env(run, ++seq)]);
            msgs += 1;
          }
        }),
      );
      console.log(
        `nats ${n} publisher(s): ${(msgs / SEC).toFixed(0)} commit messages/s (JetStream, acknowledged), nats-server CPU ${(((await cpu.used()) / SEC) * 100).toFixed(0)} %`,
      );
    }
  } finally {
    await bus.close();
    await dropNatsPrefix(prefix, CLUSTER_NATS_URL);
  }
}

await postgres();
await nats();
process.exit(0);
