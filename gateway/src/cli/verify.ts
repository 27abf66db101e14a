import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Verifier } from '@ao/actors';
import type { Verdict } from '@ao/actors';
import { AoError, isAoError } from '@ao/graphs';
import {
  DataDirLock,
  llmProfilesOf,
  LlmProfiles,
  loadConfig,
  openPgliteStore,
  openPgStore,
  parseRunFile,
  RUN_STATUSES,
  runRecordOf,
  TERMINAL_STATUSES,
} from '@ao/runtime';
import type { Config, RunRecord, RunStatus, Store } from '@ao/runtime';
import type { ToolDefinition } from '@ao/runtime';
import { loadExtensions, toolRegistry, withExamples } from '../node.js';
import type { AnyGraph } from '../node.js';
import { parseDuration } from './when.js';

const USAGE = `ao verify [--since 24h] [--graph NAME] [--status S] [--limit N] [--json] [--junit FILE] [--concurrency N]
ao verify <FILE|DIR>... [--json] [--junit FILE] [--concurrency N]
  replays finished runs of the store (DATABASE_URL, or PGlite under AO_DATA_DIR), or the run files
  given (\`ao export\`; a directory: every .json file under it), in recorded mode against the
  graphs and tools of this checkout (examples and AO_GRAPHS), in this process: no server, no model
  or tool called, nothing written to the store. One line per run and a summary; exit code 0 only
  when every run reproduced its log. Default: the last 100 finished runs of the store.`;

/** What `ao verify` was asked. */
export interface VerifyArgs {
  /** Run files and directories of them: verify these instead of the store's runs. */
  files: string[];
  sinceMs?: number;
  graph?: string;
  status?: RunStatus;
  limit: number;
  json: boolean;
  junit?: string;
  concurrency: number;
}

function parseVerifyArgs(argv: string[]): VerifyArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      since: { type: 'string' },
      graph: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      junit: { type: 'string' },
      concurrency: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) {
    const storeOnly = (['since', 'graph', 'status', 'limit'] as const).find((k) => values[k] !== undefined);
    if (storeOnly) throw new AoError('AO_VALIDATION', `--${storeOnly} selects runs of a store: it does not apply to files`, { field: storeOnly });
  }
  if (values.status && !RUN_STATUSES.includes(values.status as RunStatus))
    throw new AoError('AO_VALIDATION', `--status must be one of ${RUN_STATUSES.join(', ')}`, { field: 'status' });
  const whole = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new AoError('AO_VALIDATION', `--${name} must be a whole number >= 1`, { field: name });
    return n;
  };
  return {
    files: positionals,
    ...(values.since !== undefined ? { sinceMs: parseDuration(values.since) } : {}),
    ...(values.graph ? { graph: values.graph } : {}),
    ...(values.status ? { status: values.status as RunStatus } : {}),
    limit: whole('limit', values.limit, 100),
    json: values.json,
    ...(values.junit ? { junit: values.junit } : {}),
    concurrency: whole('concurrency', values.concurrency, 4),
  };
}

/**
 * The runs to verify, newest first: finished ones (or those of `--status`), not replays, created
 * within `--since`, of `--graph`, at most `--limit`.
 */
export async function selectRuns(
  store: Pick<Store, 'listRuns'>,
  a: Pick<VerifyArgs, 'sinceMs' | 'graph' | 'status' | 'limit'>,
  now = Date.now(),
): Promise<RunRecord[]> {
  const picked: RunRecord[] = [];
  const oldest = a.sinceMs !== undefined ? now - a.sinceMs : -Infinity;
  let cursor: string | undefined;
  for (;;) {
    const page = await store.listRuns({
      ...(a.status ? { status: a.status } : {}),
      ...(a.graph ? { graph: a.graph } : {}),
      limit: 200,
      ...(cursor ? { cursor } : {}),
    });
    for (const r of page.runs) {
      // Newest first: past the window, every later page is older still.
      if (Date.parse(r.createdAt) < oldest) return picked;
      if (r.replay || !TERMINAL_STATUSES.has(r.status)) continue;
      picked.push(r);
      if (picked.length >= a.limit) return picked;
    }
    if (!page.next) return picked;
    cursor = page.next;
  }
}

const short = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** A verdict on a run, and the file it came from when it came from one. */
export type FileVerdict = Verdict & { file?: string };

/** One verdict as the lines a person reads: a line for the run, and a diverged run's diff indented below it. */
export function verdictLines(v: FileVerdict): string[] {
  const version =
    v.version.current !== null && v.version.current !== v.version.recorded
      ? `  (graph version ${v.version.recorded} → ${v.version.current}${v.version.compatible ? ', declared compatible' : ''})`
      : '';
  const head = `${v.run}  ${v.graph}${v.file ? `  ${v.file}` : ''}`;
  if (v.outcome === 'identical') return [`✔ identical  ${head}  ${v.events} events, ${short(v.ms)}${version}`];
  if (v.outcome === 'error') return [`! not verified  ${head}  ${v.error!.code}: ${v.error!.message}${version}`];
  const d = v.divergence!;
  const what = `${d.expected ? d.expected.type : '(nothing)'} → ${d.actual ? d.actual.type : '(nothing)'}`;
  return [`✘ diverged  ${head}  at step ${d.step}, actor ${d.actor}: ${what}${version}`, ...d.diff.map((l) => `    ${l}`)];
}

export interface VerifySummary {
  runs: number;
  identical: number;
  diverged: number;
  errors: number;
  ms: number;
}

export function summarise(verdicts: readonly Verdict[], ms: number): VerifySummary {
  const count = (o: Verdict['outcome']) => verdicts.filter((v) => v.outcome === o).length;
  return { runs: verdicts.length, identical: count('identical'), diverged: count('diverged'), errors: count('error'), ms: Math.round(ms) };
}

export function summaryLine(s: VerifySummary): string {
  if (!s.runs) return 'no finished runs to verify';
  return `verified ${s.runs} run${s.runs === 1 ? '' : 's'} in ${short(s.ms)}: ${s.identical} identical, ${s.diverged} diverged${s.errors ? `, ${s.errors} not verified` : ''}`;
}

/** XML 1.0 text: escaped, and without the control characters it cannot hold. */
function xml(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

/** A JUnit XML report: one test case per run (class: its graph), a divergence a failure, a run not verified an error. */
export function junitXml(verdicts: readonly Verdict[], s: VerifySummary): string {
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const cases = verdicts.map((v) => {
    const open = `    <testcase classname="${xml(v.graph)}" name="${xml(v.run)}" time="${secs(v.ms)}"`;
    if (v.outcome === 'identical') return `${open}/>`;
    const [head, ...rest] = verdictLines(v);
    const tag = v.outcome === 'diverged' ? 'failure' : 'error';
    const type = v.outcome === 'diverged' ? 'AO_REPLAY_DIVERGED' : v.error!.code;
    return `${open}>\n      <${tag} message="${xml(head!)}" type="${xml(type)}">${xml([head, ...rest].join('\n'))}</${tag}>\n    </testcase>`;
  });
  const attrs = `tests="${s.runs}" failures="${s.diverged}" errors="${s.errors}" time="${secs(s.ms)}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="ao verify" ${attrs}>\n  <testsuite name="ao verify" ${attrs}>\n${cases.join('\n')}${cases.length ? '\n' : ''}  </testsuite>\n</testsuites>\n`;
}

/** Run `fn` over `items`, at most `n` at once, results in the items' order. */
async function pool<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** What `ao verify` reads of the source store: runs, their events and checkpoints. */
type SourceReads = Pick<Store, 'listRuns' | 'listEvents' | 'listCheckpoints'>;

/** The reads of a store, bound: what `ao verify` is given, not the store. */
const readsOf = (store: Store): SourceReads => ({
  listRuns: (q) => store.listRuns(q),
  listEvents: (id, q) => store.listEvents(id, q),
  listCheckpoints: (id) => store.listCheckpoints(id),
});

/** The source store, opened as `ao keys` opens it: the embedded one only while no other process holds its directory. */
async function openSource(config: ReturnType<typeof loadConfig>): Promise<{ runs: SourceReads; close: () => Promise<void> }> {
  if (config.DATABASE_URL) {
    const store = await openPgStore({ url: config.DATABASE_URL, max: 2 });
    return { runs: readsOf(store), close: () => store.close() };
  }
  const lock = await DataDirLock.acquire({ dir: config.AO_DATA_DIR, command: 'ao verify' });
  try {
    const store = await openPgliteStore({
      dataDir: join(config.AO_DATA_DIR, 'pglite'),
      template: { ...(config.AO_CACHE_DIR ? { cacheDir: config.AO_CACHE_DIR } : {}) },
    });
    return {
      runs: readsOf(store),
      close: async () => {
        await store.close();
        await lock.release();
      },
    };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/**
 * `ao verify`: replay the selected runs of the configured store against this checkout, in
 * recorded mode, in process; print a line per run and a summary (or `--json`), and write a JUnit
 * report with `--junit`. Exit code 0 only when every run reproduced its log.
 */
export async function verifyCommand(argv: string[], out: (s: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const a = parseVerifyArgs(argv);
  if (a === 'help') {
    out(USAGE);
    return 0;
  }
  const config = loadConfig(env);
  const ext = await loadExtensions(config.AO_GRAPHS);
  const verifier = verifierFor(config, ext, env);
  const t0 = performance.now();
  const say = (v: FileVerdict) => {
    if (!a.json) for (const l of verdictLines(v)) out(l);
    return v;
  };
  let verdicts: FileVerdict[];
  try {
    if (a.files.length) {
      const files = await runFilesIn(a.files);
      verdicts = await pool(files, a.concurrency, async (path) => say(await verifyFile(verifier, path)));
    } else {
      const source = await openSource(config);
      try {
        const runs = await selectRuns(source.runs, a);
        verdicts = await pool(runs, a.concurrency, async (run) =>
          say(await verifier.verify(run, await source.runs.listEvents(run.id, { limit: 10_000_000 }), await source.runs.listCheckpoints(run.id))),
        );
      } finally {
        await source.close();
      }
    }
  } finally {
    await verifier.close();
  }
  const summary = summarise(verdicts, performance.now() - t0);
  if (a.json) out(JSON.stringify({ runs: verdicts, summary }, null, 2));
  else out(summaryLine(summary));
  if (a.junit) await writeFile(a.junit, junitXml(verdicts, summary));
  return summary.diverged === 0 && summary.errors === 0 ? 0 : 1;
}

/**
 * A verifier of the graphs and tools of this checkout (the examples and `ext`, AO_GRAPHS' modules)
 * and the configured model profiles (to count prompt tokens as the originals did: none is called).
 */
export function verifierFor(
  config: Config,
  ext: { graphs: readonly AnyGraph[]; tools: readonly ToolDefinition[] },
  env: NodeJS.ProcessEnv = process.env,
): Verifier {
  const tools = toolRegistry(config, ext.tools);
  const profiles = new LlmProfiles(llmProfilesOf(config), { env });
  return new Verifier({ graphs: withExamples(ext.graphs), tools, llm: (p) => profiles.resolve(p) });
}

/** The run files named: files as given, directories as every `.json` file under them, in name order. */
export async function runFilesIn(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch((e: Error) => {
      throw new AoError('AO_VALIDATION', `cannot read ${p}: ${e.message}`, { field: 'file' });
    });
    if (!s.isDirectory()) {
      out.push(p);
      continue;
    }
    const names = (await readdir(p, { recursive: true })).filter((n) => n.endsWith('.json')).sort();
    out.push(...names.map((n) => join(p, n)));
  }
  return out;
}

/** Verify one run file: a file that cannot be read or is not a valid run file is a verdict `error` naming it. */
export async function verifyFile(verifier: Verifier, path: string): Promise<FileVerdict> {
  let file;
  try {
    file = parseRunFile(await readFile(path, 'utf8'), path);
  } catch (e) {
    const error = { code: isAoError(e) ? e.code : 'AO_VALIDATION', message: (e as Error).message };
    return { run: path, graph: '-', status: '-', outcome: 'error', version: { recorded: '-', current: null }, error, events: 0, ms: 0, file: path };
  }
  return { ...(await verifier.verify(runRecordOf(file), file.events, file.checkpoints)), file: path };
}
