import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One SQL statement through `psql` (the bench reads sizes and backends without a driver of its own). */
export async function psql(url: string, sql: string): Promise<string[][]> {
  const { stdout } = await run('psql', [url, '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { maxBuffer: 16 << 20 });
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

export interface TableStats {
  rows: number;
  /** Sum of `pg_column_size(row)`: the bytes of the rows as stored (after TOAST compression), no indexes. */
  rowBytes: number;
  /** `pg_total_relation_size`: heap, TOAST and indexes on disk (page granular). */
  diskBytes: number;
}

/** Rows and bytes of every user table of the database (every schema: DBOS keeps its tables in `dbos`). */
export async function tableStats(url: string): Promise<Record<string, TableStats>> {
  const rows = await psql(
    url,
    `select table_schema || '.' || table_name,
       (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text,
       (xpath('/row/b/text()', query_to_xml(format('select coalesce(sum(pg_column_size(x.*)), 0) as b from %I.%I x', table_schema, table_name), false, true, '')))[1]::text,
       pg_total_relation_size(format('%I.%I', table_schema, table_name))
     from information_schema.tables
     where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
  );
  const out: Record<string, TableStats> = {};
  for (const [t, r, b, d] of rows) out[t!] = { rows: Number(r), rowBytes: Number(b), diskBytes: Number(d) };
  return out;
}

/** What was written between two snapshots, by table (tables that did not change are left out). */
export function statsDelta(before: Record<string, TableStats>, after: Record<string, TableStats>): Record<string, TableStats> {
  const out: Record<string, TableStats> = {};
  for (const [t, a] of Object.entries(after)) {
    const b = before[t] ?? { rows: 0, rowBytes: 0, diskBytes: 0 };
    const d = { rows: a.rows - b.rows, rowBytes: a.rowBytes - b.rowBytes, diskBytes: a.diskBytes - b.diskBytes };
    if (d.rows || d.rowBytes || d.diskBytes) out[t] = d;
  }
  return out;
}

export function totalOf(s: Record<string, TableStats>): TableStats {
  return Object.values(s).reduce((a, b) => ({ rows: a.rows + b.rows, rowBytes: a.rowBytes + b.rowBytes, diskBytes: a.diskBytes + b.diskBytes }), {
    rows: 0,
    rowBytes: 0,
    diskBytes: 0,
  });
}

/**
 * CPU seconds the server processes serving this database's connections have used so far, by pid
 * (from /proc; a backend the pool closed since is missing, so read it while the pool is open).
 */
export async function serverCpu(url: string): Promise<Map<number, number>> {
  const pids = (await psql(url, 'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()')).map((r) => Number(r[0]));
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields 14 and 15 (utime, stime) in clock ticks; counted from field 3 after the name.
      out.set(pid, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // The backend ended between the query and the read.
    }
  }
  return out;
}

/** CPU seconds used between two `serverCpu` readings (a backend new since the first counts from 0). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, v] of after) s += v - (before.get(pid) ?? 0);
  return s;
}
