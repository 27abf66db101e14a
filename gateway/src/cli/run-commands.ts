import { TERMINAL_STATUSES } from '@ao/runtime';
import { ApiError, HttpClient } from './client.js';
import type { Client, ReplayRequest } from './client.js';
import type { RunViewT } from '../http/views.js';
import { out, readerGone } from './output.js';
import { watchRun } from './watch.js';

/** `ao signal`: answer a wait; embedded, follow the run until it ends or waits again. */
export async function signal(
  client: Client,
  id: string | undefined,
  v: {
    node?: string | undefined;
    wait?: string | undefined;
    payload?: string | undefined;
    approve?: boolean | undefined;
    reject?: boolean | undefined;
    comment?: string | undefined;
    watch?: boolean | undefined;
  },
): Promise<number> {
  const usage = 'usage: ao signal <run-id> --node N (--approve | --reject | --payload JSON) [--comment C] [--wait ID]';
  if (!id || !v.node) throw new ApiError(400, 'AO_VALIDATION', usage, id ? 'node' : 'id');
  if ([v.approve, v.reject, v.payload !== undefined].filter(Boolean).length !== 1)
    throw new ApiError(400, 'AO_VALIDATION', `give exactly one of --approve, --reject, --payload; ${usage}`, 'payload');
  let payload: unknown;
  if (v.payload !== undefined) {
    try {
      payload = JSON.parse(v.payload);
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--payload is not valid JSON: ${(e as Error).message}`, 'payload');
    }
  } else {
    payload = { approved: v.approve === true, ...(v.comment !== undefined ? { comment: v.comment } : {}) };
  }
  const r = await client.signal(id, { node: v.node, ...(v.wait ? { waitId: v.wait } : {}), payload });
  out(
    r.duplicate
      ? `run ${id}: that wait was already answered (${r.signal}); nothing changed`
      : `run ${id}: answer ${r.signal} stored${r.wait ? ` for wait ${r.wait}` : ' (before the wait: the next one takes it)'} via ${client.where}`,
  );
  if (!v.watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, r.id, v.watch ? out : () => {});
  out(`status: ${status}`);
  return status === 'succeeded' || status === 'waiting' ? 0 : 1;
}

/** `ao run`: start a run; embedded or with --watch, follow it to its end. */
export async function run(client: Client, graph: string | undefined, inputJson: string | undefined, watch: boolean): Promise<number> {
  if (!graph) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao run <graph> --input <json>', 'graph');
  let input: unknown = {};
  if (inputJson !== undefined) {
    try {
      input = JSON.parse(inputJson);
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--input is not valid JSON: ${(e as Error).message}`, 'input');
    }
  }
  const started = await client.startRun({ graph, input });
  out(`run ${started.id} (${graph}) ${started.status} via ${client.where}`);
  // Embedded, the run lives in this process: follow it to the end even without --watch.
  if (!watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, started.id, watch ? out : () => {});
  const final = await client.getRun(started.id);
  if (final.output !== null && final.output !== undefined) out(`output:\n${JSON.stringify(final.output, null, 2)}`);
  out(`status: ${status}`);
  if (status === 'waiting') {
    for (const w of final.waits)
      out(
        `waits for a person at ${w.node}: ${w.prompt}\n  answer: ao signal ${final.id} --node ${w.node} ${w.kind === 'approval' ? '--approve (or --reject)' : `--payload '{"answer": "..."}'`}`,
      );
    return 0;
  }
  return status === 'succeeded' ? 0 : 1;
}

/** `ao watch`'s exit code for the status a run ended (or parked) in. */
const WATCH_EXIT: Readonly<Record<string, number>> = { succeeded: 0, failed: 1, budget_exceeded: 3, cancelled: 4, waiting: 5 };

/**
 * \`ao watch <id>\`: follow a run, running or finished, from its first event, printing what
 * \`ao run --watch\` prints, until it ends; exit with its status (WATCH_EXIT). A run parked waiting
 * for a person is followed on through a server (it may be answered from anywhere); embedded on
 * PGlite nobody else can answer it, so the watch ends there (5). A reader that goes away
 * (\`| head\`) ends it quietly.
 */
export async function watch(client: Client, ref: string | undefined): Promise<number> {
  if (!ref) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao watch <run-id>', 'id');
  const run = await client.getRun(ref);
  out(`run ${run.id} (${run.graph}) ${run.status} via ${client.where}`);
  // Embedded on PGlite this process holds the data directory: no server can be moving the run.
  const alone = client.where === 'embedded (pglite)';
  const parked = run.status === 'waiting' && run.owner === null;
  if (alone && !TERMINAL_STATUSES.has(run.status) && !parked) {
    throw new ApiError(
      503,
      'AO_RUN_INTERRUPTED',
      `run ${run.id} is ${run.status} but no process hosts it (the server that ran it stopped): \`ao serve\` on this data directory resumes it, and \`ao watch\` then follows it`,
      'id',
    );
  }
  const answers = (r: RunViewT) =>
    r.waits.map(
      (w) =>
        `waits for a person at ${w.node}: ${w.prompt}\n  answer: ao signal ${r.id} --node ${w.node} ${w.kind === 'approval' ? '--approve (or --reject)' : `--payload '{"answer": "..."}'`}`,
    );
  const status = await watchRun(client, run.id, out, { stop: readerGone, throughWaits: !alone, onParked: (r) => answers(r).forEach((l) => out(l)) });
  if (readerGone()) return 0;
  const final = await client.getRun(run.id);
  if (final.output !== null && final.output !== undefined) out(`output:\n${JSON.stringify(final.output, null, 2)}`);
  out(`status: ${status}`);
  if (status === 'waiting') answers(final).forEach((l) => out(l));
  return WATCH_EXIT[status] ?? 1;
}

/** `ao replay`: replay (or, with --overrides, fork) a run from a checkpoint. */
export async function replay(
  client: Client,
  id: string | undefined,
  v: {
    'from-step'?: string | undefined;
    recorded?: boolean | undefined;
    lenient?: boolean | undefined;
    overrides?: string | undefined;
    watch?: boolean | undefined;
  },
): Promise<number> {
  if (!id || v['from-step'] === undefined)
    throw new ApiError(400, 'AO_VALIDATION', 'usage: ao replay <run-id> --from-step N [--recorded | --lenient]', 'fromStep');
  const fromStep = Number(v['from-step']);
  if (!Number.isInteger(fromStep) || fromStep < 0) throw new ApiError(400, 'AO_VALIDATION', '--from-step must be a whole number >= 0', 'fromStep');
  if (v.recorded && v.lenient) throw new ApiError(400, 'AO_VALIDATION', 'choose one of --recorded and --lenient', 'mode');
  let overrides: ReplayRequest['overrides'];
  if (v.overrides !== undefined) {
    try {
      overrides = JSON.parse(v.overrides) as ReplayRequest['overrides'];
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--overrides is not valid JSON: ${(e as Error).message}`, 'overrides');
    }
  }
  const mode = v.recorded ? 'recorded' : v.lenient ? 'lenient' : 'live';
  const started = await client.replay(id, { fromStep, mode, ...(overrides ? { overrides } : {}) });
  out(`run ${started.id} replays ${id} from step ${fromStep} (${mode}${overrides ? ', fork' : ''}) via ${client.where}`);
  if (!v.watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, started.id, v.watch ? out : () => {});
  const final = await client.getRun(started.id);
  const d = final.replay?.divergence;
  if (d) {
    out(`diverged at step ${d.step}, actor ${d.actor}:`);
    out(`  original: ${d.expected ? `${d.expected.type} -> ${d.expected.to}` : '(nothing)'}`);
    out(`  replay:   ${d.actual ? `${d.actual.type} -> ${d.actual.to}` : '(nothing)'}`);
    for (const l of d.diff) out(`    ${l}`);
  }
  out(`status: ${status}`);
  return status === 'succeeded' ? 0 : 1;
}

/** `ao cancel`: cancel a run. */
export async function cancel(client: Client, ref: string | undefined): Promise<number> {
  if (!ref) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao cancel <run-id>', 'id');
  const r = await client.cancel(ref);
  out(`run ${r.id} ${r.status}`);
  return 0;
}
