import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import { FakeProvider } from '@ao/runtime/fake-llm';
import type { FastifyInstance } from 'fastify';
import { buildApp, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';
import { connect } from './stream-client.js';

/** A two-node pipeline on an OpenAI-compatible endpoint that streams its answers in pieces, slowly. */
const slowWriter = graph('slow-writer')
  .node('draft', { agent: 'pipeline', instructions: 'Write a draft.' })
  .node('polish', { agent: 'pipeline', instructions: 'Polish the draft.' })
  .edge('draft', 'polish')
  .budget({ tokens: 50_000 });

describe('answers being written reach the run stream as delta frames', () => {
  let fake: FakeProvider;
  let rt: Runtime;
  let app: FastifyInstance;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    fake = await FakeProvider.start(() => ({
      text: 'A draft written in several streamed pieces, word by word, for the inspector to show.',
      usage: { input: 30, output: 20 },
    }));
    dir = await mkdtemp(join(tmpdir(), 'ao-deltas-'));
    rt = await startRuntime(
      loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'deltas', OPENAI_BASE_URL: `${fake.url}/v1`, OPENAI_API_KEY: 'k', AO_LLM_MODEL: 'writer' }),
      { graphs: [slowWriter] },
    );
    app = await buildApp(rt.engine, { inspectorDir: false, deltas: rt.providers.deltas });
    url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends each piece as it is written (no seq, not in the log), then the envelope holding the whole answer', async () => {
    const run = await rt.engine.startRun({ graph: 'slow-writer' });
    const client = await connect(`${url}/runs/${run.id}/stream?after=0`);
    await client.closed;
    const deltas = client.frames.flatMap((f) => (f.kind === 'delta' ? [f] : []));
    const responses = client.envelopes().filter((e) => e.type === 'llm.response');
    expect(responses).toHaveLength(2);
    // polish starts after the stream is open: all its pieces arrive, and they spell its answer.
    const polish = responses.find((e) => e.to === 'supervisor/polish')!;
    const key = (polish.payload as { key: string }).key;
    const pieces = deltas.filter((d) => d.key === key);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.map((d) => d.index)).toEqual(pieces.map((_, i) => i));
    expect(pieces.map((d) => d.text).join('')).toBe((polish.payload as { content: string }).content);
    expect(pieces[0]).toMatchObject({ runId: run.id, actor: 'supervisor/polish', attempt: 1 });
    // Each piece came before the envelope that holds the answer.
    const at = (pred: (f: (typeof client.frames)[number]) => boolean) => client.frames.findIndex(pred);
    expect(at((f) => f.kind === 'delta' && f.key === key)).toBeLessThan(at((f) => f.kind === 'envelope' && f.envelope.id === polish.id));
    // Never journaled.
    expect((await rt.engine.listEvents(run.id, { limit: 1000 })).some((e) => e.type.includes('delta'))).toBe(false);
    expect(client.frames.at(-1)).toMatchObject({ kind: 'end', status: 'succeeded' });
  });
});
