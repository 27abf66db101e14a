import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, describe, expect, it } from 'vitest';
import { migrationsFolder } from '../migrations.js';
import { openPgliteStore } from './pglite-store.js';
import { ensureTemplate, prepareDataDir, templateKey, templateTarball } from './template.js';
import { pgliteWasmModule } from './wasm.js';
import type { DataDirSource } from './template.js';

const CONF = 'shared_buffers = 32MB';
const tmp: string[] = [];
afterAll(() => Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))));
const tempDir = async (prefix: string) => {
  const d = await mkdtemp(join(tmpdir(), prefix));
  tmp.push(d);
  return d;
};

/** A copy of the migrations folder whose journal keeps only its first `n` entries (older code's migrations). */
async function firstMigrations(n: number): Promise<string> {
  const folder = await tempDir('ao-migrations-');
  await cp(migrationsFolder, folder, { recursive: true });
  const journalFile = join(folder, 'meta', '_journal.json');
  const meta = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: unknown[] };
  await writeFile(journalFile, JSON.stringify({ ...meta, entries: meta.entries.slice(0, n) }));
  return folder;
}

/**
 * What the database in `dataDir` is, as far as the store can tell: its databases, every relation
 * outside the system catalogs with its oid, kind and options, columns, indexes, constraints,
 * functions, triggers, extensions and the migrator's rows.
 */
type Catalog = Record<
  'databases' | 'relations' | 'columns' | 'indexes' | 'constraints' | 'functions' | 'triggers' | 'extensions' | 'migrations',
  Array<Record<string, unknown>>
>;

async function catalogOf(dataDir: string): Promise<Catalog> {
  const c = new PGlite(dataDir, { postgresqlconf: CONF });
  try {
    return await catalogOfClient(c);
  } finally {
    await c.close();
  }
}

async function catalogOfClient(c: PGlite): Promise<Catalog> {
  const q = async (text: string) => (await c.query<Record<string, unknown>>(text)).rows;
  const user = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`;
  return {
    databases: await q('select datname, encoding, datcollate, datctype from pg_database order by datname'),
    relations: await q(
      `select n.nspname, c.relname, c.oid::int, c.relkind, c.reloptions, c.relpersistence from pg_class c join pg_namespace n on n.oid = c.relnamespace where ${user} order by 1, 2`,
    ),
    columns: await q(
      `select table_schema, table_name, column_name, ordinal_position, data_type, column_default, is_nullable, is_identity from information_schema.columns where table_schema not in ('pg_catalog', 'information_schema') order by 1, 2, 4`,
    ),
    indexes: await q(`select schemaname, tablename, indexname, indexdef from pg_indexes where schemaname not in ('pg_catalog') order by 1, 2, 3`),
    constraints: await q(
      `select n.nspname, conrelid::regclass::text as rel, conname, pg_get_constraintdef(c.oid) as def from pg_constraint c join pg_namespace n on n.oid = c.connamespace where ${user} order by 1, 2, 3`,
    ),
    functions: await q(
      `select n.nspname, p.proname, pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace where ${user} order by 1, 2`,
    ),
    triggers: await q('select tgrelid::regclass::text as rel, tgname from pg_trigger where not tgisinternal order by 1, 2'),
    extensions: await q('select extname, extversion from pg_extension order by 1'),
    migrations: await q('select id, hash, created_at::text from drizzle.__drizzle_migrations order by id'),
  };
}

async function open(dataDir: string, o: { cacheDir?: string; template?: false } = {}): Promise<DataDirSource | undefined> {
  let source: DataDirSource | undefined;
  const store = await openPgliteStore({
    dataDir,
    template: o.template === false ? false : { ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) },
    onDataDir: (s) => (source = s),
  });
  await store.close();
  return source;
}

const templatesIn = async (cacheDir: string) => (await readdir(join(cacheDir, 'pglite-templates')).catch(() => [])).sort();

describe('a new data directory is copied from a template', () => {
  it('is the same database as one made by initdb and the migrations', async () => {
    const root = await tempDir('ao-template-same-');
    const cacheDir = join(root, 'cache');
    expect(await open(join(root, 'initdb'), { template: false })).toBeUndefined();
    expect(await open(join(root, 'first'), { cacheDir })).toBe('new-template');
    expect(await open(join(root, 'second'), { cacheDir })).toBe('template');
    // Opened again, a directory is what it was: no template is involved.
    expect(await open(join(root, 'second'), { cacheDir })).toBe('existing');

    const reference = await catalogOf(join(root, 'initdb'));
    expect(reference.migrations.length).toBe(
      (JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length,
    );
    expect(reference.relations.map((r) => r.relname)).toContain('runs');
    expect(await catalogOf(join(root, 'first'))).toEqual(reference);
    expect(await catalogOf(join(root, 'second'))).toEqual(reference);
    // The template's directory is not one the copies share: nothing of the cache is in use.
    expect(await templatesIn(cacheDir)).toHaveLength(1);
  }, 120_000);

  it('never uses a template of other migrations: a changed migration makes a new one', async () => {
    const root = await tempDir('ao-template-stale-');
    const cacheDir = join(root, 'cache');
    const older = await firstMigrations(7);
    expect(templateKey({ conf: CONF, migrationsFolder: older })).not.toBe(templateKey({ conf: CONF, migrationsFolder }));
    const old = await ensureTemplate({ conf: CONF, migrationsFolder: older, cacheDir });
    expect(old.built).toBe(true);

    // The current migrations: the cache's template is not theirs, so one is built and used.
    expect(await open(join(root, 'data'), { cacheDir })).toBe('new-template');
    const catalog = await catalogOf(join(root, 'data'));
    expect(catalog.migrations.length).toBeGreaterThan(7);
    expect(await templatesIn(cacheDir)).toHaveLength(2);

    // A migration's text changed (same journal, same names): another key, another template.
    const edited = await firstMigrations(1_000);
    const sql = (await readdir(edited)).filter((f) => f.endsWith('.sql')).sort()[0]!;
    await writeFile(join(edited, sql), `${await readFile(join(edited, sql), 'utf8')}\n-- changed\n`);
    expect(templateKey({ conf: CONF, migrationsFolder: edited })).not.toBe(templateKey({ conf: CONF, migrationsFolder }));

    // A template whose stamp names another key (a cache written by hand, or half of one) is not used.
    const current = (await ensureTemplate({ conf: CONF, migrationsFolder, cacheDir })).dir;
    const stampFile = join(current, 'stamp.json');
    const stamp = JSON.parse(await readFile(stampFile, 'utf8')) as { key: string };
    await writeFile(stampFile, JSON.stringify({ ...stamp, key: 'f'.repeat(64) }));
    const again = await ensureTemplate({ conf: CONF, migrationsFolder, cacheDir });
    expect(again.built).toBe(true);
    expect(JSON.parse(await readFile(stampFile, 'utf8'))).toMatchObject({ key: stamp.key });
  }, 180_000);

  it('two processes building the template at once both get a whole one', async () => {
    const root = await tempDir('ao-template-race-');
    const cacheDir = join(root, 'cache');
    const script = join(root, 'build.mts');
    const templateModule = fileURLToPath(new URL('./template.ts', import.meta.url));
    await writeFile(
      script,
      `import { prepareDataDir } from ${JSON.stringify(templateModule)};\n` +
        `const r = await prepareDataDir(process.argv[2], { conf: ${JSON.stringify(CONF)}, migrationsFolder: ${JSON.stringify(migrationsFolder)}, cacheDir: ${JSON.stringify(cacheDir)} });\n` +
        `if (r.error) throw r.error;\nconsole.log(r.source);\n`,
    );
    const run = (dataDir: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const sources = await Promise.all([run(join(root, 'a')), run(join(root, 'b'))]);
    // Each built one (or, started late, found the other's): the first rename stands.
    expect(sources).toContain('new-template');
    for (const s of sources) expect(['new-template', 'template']).toContain(s);
    // One template, no temporary directory left, and both copies are whole databases.
    expect(await templatesIn(cacheDir)).toHaveLength(1);
    const reference = await catalogOf(join(root, 'a'));
    expect(reference.migrations.length).toBeGreaterThan(0);
    expect(await catalogOf(join(root, 'b'))).toEqual(reference);
    expect(await open(join(root, 'c'), { cacheDir })).toBe('template');
    expect(await catalogOf(join(root, 'c'))).toEqual(reference);
  }, 180_000);

  it('leaves nothing half made: a dead process’s leftovers are removed, a directory with files is left alone', async () => {
    const root = await tempDir('ao-template-left-');
    const cacheDir = join(root, 'cache');
    await ensureTemplate({ conf: CONF, migrationsFolder, cacheDir });
    // A pid that is surely gone: a child that has exited.
    const dead = await new Promise<number>((resolve) => {
      const c = spawn(process.execPath, ['-e', '0']);
      c.on('exit', () => resolve(c.pid!));
    });
    const leftovers = [join(root, `.pglite.tmp-${dead}-0001`), join(cacheDir, 'pglite-templates', `.tmp-${dead}-0001`)];
    for (const d of leftovers) await mkdir(join(d, 'base'), { recursive: true });
    // Killed mid-copy, a process leaves only its temporary directory: the data directory's name is free.
    expect(await open(join(root, 'pglite'), { cacheDir })).toBe('template');
    expect(existsSync(leftovers[0]!)).toBe(false);
    expect((await readdir(root)).filter((n) => n.startsWith('.'))).toEqual([]);
    // A new template build clears the cache's leftovers too.
    await ensureTemplate({ conf: CONF, migrationsFolder: await firstMigrations(2), cacheDir });
    expect(existsSync(leftovers[1]!)).toBe(false);

    // A directory with files but no database is PGlite's to judge, not overwritten with the template.
    const odd = join(root, 'odd');
    await mkdir(odd);
    await writeFile(join(odd, 'note.txt'), 'mine');
    expect(await prepareDataDir(odd, { conf: CONF, migrationsFolder, cacheDir })).toEqual({ source: 'existing' });
    expect(await readdir(odd)).toEqual(['note.txt']);
    // An empty directory (made by hand, or by an older `mkdir` before open) is new.
    const empty = join(root, 'empty');
    await mkdir(empty);
    expect(await open(empty, { cacheDir })).toBe('template');
    expect(existsSync(join(empty, 'PG_VERSION'))).toBe(true);
  }, 120_000);

  it("compiles PGlite's WebAssembly once per process (found where this PGlite version keeps it)", async () => {
    const mod = await pgliteWasmModule();
    expect(mod).toBeDefined();
    expect(await pgliteWasmModule()).toBe(mod);
  });

  it('falls back to initdb when no template can be had', async () => {
    const root = await tempDir('ao-template-nocache-');
    // The cache "directory" is a file: nothing can be written there.
    const cacheDir = join(root, 'cache');
    await writeFile(cacheDir, 'not a directory');
    let error: unknown;
    const store = await openPgliteStore({ dataDir: join(root, 'pglite'), template: { cacheDir }, onDataDir: (_s, e) => (error = e) });
    try {
      expect(error).toBeInstanceOf(Error);
      expect((await store.listRuns({ limit: 1 })).runs).toEqual([]);
    } finally {
      await store.close();
    }
    expect(await readdir(root)).toEqual(['cache', 'pglite']);
  }, 120_000);
  it("an in-memory database loaded from the template's tarball is the one initdb and the migrations make", async () => {
    const cacheDir = join(await tempDir('ao-template-memory-'), 'cache');
    const made = new PGlite({ postgresqlconf: CONF });
    let reference: Catalog;
    try {
      await migrate(drizzle({ client: made }), { migrationsFolder });
      reference = await catalogOfClient(made);
    } finally {
      await made.close();
    }
    expect(reference.relations.map((r) => r.relname)).toContain('runs');
    const first = await templateTarball({ conf: CONF, migrationsFolder, cacheDir });
    expect(first.built).toBe(true);
    const second = await templateTarball({ conf: CONF, migrationsFolder, cacheDir });
    expect(second.built).toBe(false);
    // Loaded twice from the same tarball: each database is whole and its own.
    for (const { tarball } of [first, second]) {
      const loaded = new PGlite({ postgresqlconf: CONF, loadDataDir: tarball });
      try {
        expect(await catalogOfClient(loaded)).toEqual(reference);
        // A table made in the first is not in the second.
        await loaded.exec('create table scratch (x int)');
      } finally {
        await loaded.close();
      }
    }
  }, 180_000);

  it("opens an in-memory store from the template, with the store's server settings", async () => {
    const cacheDir = join(await tempDir('ao-template-memstore-'), 'cache');
    await ensureTemplate({ conf: CONF, migrationsFolder, cacheDir });
    const sources: DataDirSource[] = [];
    const store = await openPgliteStore({ template: { cacheDir }, onDataDir: (s) => sources.push(s) });
    try {
      expect(sources).toEqual(['template']);
      expect((await store.listRuns({ limit: 1 })).runs).toEqual([]);
      // PGlite's options reached it (`new PGlite(undefined, options)` once dropped them).
      const client = (store as unknown as { db: { $client: PGlite } }).db.$client;
      expect((await client.query<{ shared_buffers: string }>('show shared_buffers')).rows[0]?.shared_buffers).toBe('32MB');
    } finally {
      await store.close();
    }
    // Without a template, PGlite's initdb makes it, as before.
    const plain: DataDirSource[] = [];
    const initdb = await openPgliteStore({ template: false, onDataDir: (s) => plain.push(s) });
    try {
      expect(plain).toEqual([]);
      expect((await initdb.listRuns({ limit: 1 })).runs).toEqual([]);
    } finally {
      await initdb.close();
    }
  }, 120_000);
});
