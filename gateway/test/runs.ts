import { expect } from 'vitest';

/** Helpers for tests that drive runs over a gateway's HTTP API. */

export interface Env {
  id: string;
  seq: number;
  type: string;
  payload: { key?: string; node?: string };
}

export const json = async <T>(url: string, init?: RequestInit): Promise<T> => (await fetch(url, init)).json() as Promise<T>;
export const post = (url: string, body: unknown) =>
  json<{ id: string }>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export async function waitAll(url: string, ids: string[], ms: number): Promise<Map<string, { status: string; output: unknown }>> {
  const end = Date.now() + ms;
  const done = new Map<string, { status: string; output: unknown }>();
  while (done.size < ids.length) {
    for (const id of ids) {
      if (done.has(id)) continue;
      const r = await json<{ status: string; output: unknown }>(`${url}/runs/${id}`);
      if (['succeeded', 'failed', 'cancelled', 'budget_exceeded'].includes(r.status)) done.set(id, r);
    }
    if (done.size < ids.length && Date.now() > end) {
      const stuck = ids.filter((id) => !done.has(id));
      const detail = await Promise.all(
        stuck.slice(0, 3).map(async (id) => {
          const r = await json<{ status: string; owner: string | null; nodes: Record<string, { status: string }> }>(`${url}/runs/${id}`);
          const evs = (await json<{ events: Env[] }>(`${url}/runs/${id}/events?limit=1000`)).events;
          return `${id} ${r.status} owner=${r.owner} nodes=${JSON.stringify(Object.fromEntries(Object.entries(r.nodes).map(([k, v]) => [k, v.status])))} last: ${evs
            .slice(-4)
            .map((e) => `${e.seq}:${e.type}`)
            .join(' ')}`;
        }),
      );
      throw new Error(`${stuck.length} of ${ids.length} runs unfinished after ${ms} ms:\n${detail.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return done;
}

/** A run's log is whole: gapless seqs, unique ids, one run.finished, each effect's result recorded once. */
export function expectWholeLog(events: Env[], label: string): void {
  expect(
    events.map((e) => e.seq),
    label,
  ).toEqual(events.map((_, i) => i + 1));
  expect(new Set(events.map((e) => e.id)).size, label).toBe(events.length);
  expect(
    events.filter((e) => e.type === 'run.finished'),
    label,
  ).toHaveLength(1);
  for (const type of ['llm.response', 'tool.result', 'budget.granted']) {
    const keys = events.filter((e) => e.type === type).map((e) => e.payload.key);
    expect(new Set(keys).size, `${label}: ${type} per effect key`).toBe(keys.length);
  }
}

/** Every run's record once none of them is pending or running (polled), or an error naming those that are not. */
export async function settle(base: string, ids: string[], ms: number): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + ms;
  for (;;) {
    const runs = await Promise.all(ids.map((id) => json<Record<string, unknown>>(`${base}/runs/${id}`)));
    if (runs.every((r) => !['pending', 'running'].includes(r.status as string))) return runs;
    if (Date.now() > end) throw new Error(`runs did not finish: ${JSON.stringify(runs.map((r) => [r.id, r.status]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
