import { isAoError } from '@ao/graphs';
import { DataDirLock, dataDirLocked } from '@ao/runtime';
import type { loadConfig } from '@ao/runtime';
import { HttpClient } from './client.js';
import type { Client } from './client.js';

// The engine (../node.js) and what it loads are imported only when no gateway answers, below:
// a command that talks to a running gateway loads none of them.

/**
 * The gateway a command talks to. Named (`--url`, AO_URL): that one. Embedded store: the server
 * that holds AO_DATA_DIR, at the address in its lock (whatever its port); a directory held by a
 * process without one (\`ao node\`, another CLI) is AO_DATA_DIR_LOCKED, never opened. Otherwise the
 * gateway on the default port, else an engine in this process on the store.
 */
export async function connect(
  config: ReturnType<typeof loadConfig>,
  cmd: string,
  named: string | undefined,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const none = async () => {};
  if (named) {
    if (await HttpClient.reachable(named)) return { client: new HttpClient(named), close: none };
    throw new Error(`no gateway answers at ${named}`);
  }
  for (let attempt = 0; ; attempt++) {
    if (!config.DATABASE_URL) {
      const url = await serverOfDataDir(config.AO_DATA_DIR);
      if (url) return { client: new HttpClient(url), close: none };
    }
    const fallback = `http://localhost:${config.PORT}`;
    if (await HttpClient.reachable(fallback)) return { client: new HttpClient(fallback), close: none };
    try {
      // Its own node id: the CLI must never take over runs a server with the configured id hosts.
      // Passive: it hosts the run it starts (`ao run`) and takes over nothing else.
      const [{ startRuntime }, { EmbeddedClient }] = await Promise.all([import('../node.js'), import('./embedded-client.js')]);
      const rt = await startRuntime({ ...config, AO_LOG_LEVEL: 'warn', AO_NODE_ID: `cli-${process.pid}` }, { passive: true, command: `ao ${cmd}` });
      return { client: new EmbeddedClient(rt.engine, `embedded (${rt.engine.storeKind})`), close: rt.close };
    } catch (e) {
      // A server took the directory between our look and our try: talk to it (once).
      if (isAoError(e) && e.code === 'AO_DATA_DIR_LOCKED' && attempt === 0) continue;
      throw e;
    }
  }
}

/**
 * The address of the live \`ao serve\` holding the data directory, once it listens; undefined when
 * nobody holds it (or its holder is gone). A holder without an address fails AO_DATA_DIR_LOCKED:
 * the CLI does not open a directory another process holds.
 */
async function serverOfDataDir(dir: string): Promise<string | undefined> {
  // A server holds the directory from before its store opens until it listens: give it that long.
  const end = Date.now() + 60_000;
  for (;;) {
    const seen = await DataDirLock.inspect(dir);
    if (!seen || seen.state === 'gone') return undefined;
    const h = seen.holder;
    if (h?.url && (await HttpClient.reachable(h.url))) return h.url;
    const starting = h?.command === 'ao serve' && seen.state === 'alive';
    if (!starting || Date.now() > end) throw dataDirLocked(dir, h, h?.url ? ' (its HTTP API does not answer)' : '');
    await new Promise((r) => setTimeout(r, 100));
  }
}
