import { RUN_STATUSES } from '@ao/runtime';
import type { RunStatus } from '@ao/runtime';
import type { Values } from './args.js';
import { ApiError } from './client.js';
import type { Client } from './client.js';
import { graphDetailLines, graphsList, runLines, runsTable } from './format.js';
import { out } from './output.js';
import { parseInstant } from './when.js';

/**
 * What `--id` accepts: the start of a run id (the store's `RUN_ID_PREFIX`). Written here, not
 * imported: importing it from the store's module put the store's chunk (PGlite, drizzle, pg) among
 * the modules every command loads (scripts/ao.test.ts).
 */
const ID_PREFIX = /^[0-9a-fA-F-]{1,36}$/;

/** `ao runs`: runs, newest first, searched by status, graph, creation time, id prefix. */
export async function runs(client: Client, values: Values): Promise<number> {
  if (values.status && !RUN_STATUSES.includes(values.status as RunStatus))
    throw new ApiError(400, 'AO_VALIDATION', `--status must be one of ${RUN_STATUSES.join(', ')}`, 'status');
  if (values.id !== undefined && !ID_PREFIX.test(values.id))
    throw new ApiError(400, 'AO_VALIDATION', '--id must be the start of a run id (hex digits and dashes)', 'id');
  const now = Date.now();
  const runs = await client.listRuns({
    ...(values.status ? { status: values.status as RunStatus } : {}),
    ...(values.graph ? { graph: values.graph } : {}),
    ...(values.since !== undefined ? { since: parseInstant(values.since, 'since', now) } : {}),
    ...(values.until !== undefined ? { until: parseInstant(values.until, 'until', now) } : {}),
    ...(values.id !== undefined ? { q: values.id } : {}),
    limit: values.limit ? Number(values.limit) : 20,
  });
  for (const l of runsTable(runs, Date.now())) out(l);
  return 0;
}

/** `ao show`: a run's status, times, usage, nodes and output (`--json`: the raw run), `--events` its log. */
export async function show(client: Client, ref: string | undefined, values: Values): Promise<number> {
  if (!ref) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao show <run-id>', 'id');
  const r = await client.getRun(ref);
  if (values.json) out(JSON.stringify(r, null, 2));
  else {
    // The graph's node order, when the graph is still registered.
    const order = await client.graph(r.graph).then(
      (g) => g.nodes.map((n) => n.id),
      () => [],
    );
    for (const l of runLines(r, Date.now(), order)) out(l);
  }
  if (values.events) {
    if (!values.json) out('\nevents');
    for (let page = await client.events(r.id, 0); page.length; page = await client.events(r.id, page.at(-1)!.seq)) {
      for (const e of page) out(`${String(e.seq).padStart(4)} ${e.type.padEnd(22)} ${e.from} -> ${e.to}`);
    }
  }
  return 0;
}

/** `ao waiting`: runs waiting for a person, and what they wait for. */
export async function waiting(client: Client, values: Values): Promise<number> {
  const runs = await client.listRuns({ status: 'waiting', limit: values.limit ? Number(values.limit) : 50 });
  if (!runs.length) out('no run waits for a person');
  for (const r of runs) {
    if (!r.waits.length) out(`${r.id}  ${r.graph.padEnd(16)} parked: ${r.error?.code ?? ''} ${r.error?.message ?? ''}`);
    for (const w of r.waits) out(`${r.id}  ${r.graph.padEnd(16)} ${w.node}: ${w.prompt}  (${w.kind}, wait ${w.id}, since ${w.since})`);
  }
  return 0;
}

/** `ao diff`: where two runs first differ, and their node outputs; exit 0 only if identical. */
export async function diff(client: Client, a: string | undefined, b: string | undefined): Promise<number> {
  if (!a || !b) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao diff <run-a> <run-b>', 'id');
  const d = await client.diff(a, b);
  out(d.identical ? `identical: ${d.events.a} decisions each` : `first difference at decision ${d.first!.index + 1} of ${d.a}, actor ${d.first!.actor}:`);
  if (d.first) {
    out(`  ${d.a}: ${d.first.a ? `${d.first.a.type} -> ${d.first.a.to}` : '(nothing)'}`);
    out(`  ${d.b}: ${d.first.b ? `${d.first.b.type} -> ${d.first.b.to}` : '(nothing)'}`);
    for (const l of d.first.diff) out(`    ${l}`);
  }
  for (const n of d.nodes) out(`node ${n.node}: output differs\n  a: ${JSON.stringify(n.a)?.slice(0, 300)}\n  b: ${JSON.stringify(n.b)?.slice(0, 300)}`);
  return d.identical ? 0 : 1;
}

/** `ao graphs [<name>]`: every graph's edges; with a name, its nodes and input fields. */
export async function graphs(client: Client, name: string | undefined): Promise<number> {
  const lines = name ? graphDetailLines(await client.graph(name)) : graphsList(await client.graphs());
  for (const l of lines) out(l);
  return 0;
}
