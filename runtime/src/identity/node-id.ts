import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { AoError } from '@ao/graphs';

/** What a runtime node id may be (AO_NODE_ID, `<data dir>/node-id`). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

/** Where a node id came from: AO_NODE_ID, the embedded data dir, or made for this process. */
export type NodeIdSource = 'configured' | 'data-dir' | 'generated';

/** A new id: the host name (made safe, at most 48 characters) and 8 random hex digits. */
export function generateNodeId(host = hostname()): string {
  const safe =
    host
      .replace(/[^A-Za-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 48) || 'node';
  return `${safe}-${randomBytes(4).toString('hex')}`;
}

/**
 * This node's id. AO_NODE_ID when set. Otherwise, with the embedded store (`idFile`, beside its
 * data), an id generated once and kept there, so a server restarted on the same data dir has the
 * same id and takes its runs back at once. Otherwise (Postgres, where every process of a cluster
 * may start from the same directory) a new id per process: two nodes started without AO_NODE_ID
 * never share one. Unique is not enough on its own: `NodeIdentity.take` refuses an id a live
 * process holds.
 *
 * @example
 * const { id } = await resolveNodeId({ configured: config.AO_NODE_ID, idFile: join(config.AO_DATA_DIR, 'node-id') });
 */
export async function resolveNodeId(o: { configured?: string | undefined; idFile?: string | undefined }): Promise<{ id: string; source: NodeIdSource }> {
  if (o.configured) return { id: o.configured, source: 'configured' };
  if (!o.idFile) return { id: generateNodeId(), source: 'generated' };
  const read = async (): Promise<string | undefined> => {
    let text: string;
    try {
      text = await readFile(o.idFile!, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AoError('AO_CONFIG_INVALID', `cannot read the node id file ${o.idFile}: ${(e as Error).message}`, { field: 'AO_DATA_DIR', cause: e });
    }
    const id = text.trim();
    if (!NODE_ID_PATTERN.test(id))
      throw new AoError(
        'AO_CONFIG_INVALID',
        `the node id file ${o.idFile} does not hold a node id (letters, digits, _ . or -); delete it to have a new one made`,
        { field: 'AO_DATA_DIR' },
      );
    return id;
  };
  const kept = await read();
  if (kept) return { id: kept, source: 'data-dir' };
  await mkdir(dirname(o.idFile), { recursive: true });
  // Written whole under another name, then linked into place: `link` fails if the file exists,
  // so of two processes starting at once one id wins and neither reads a half-written file.
  const id = generateNodeId();
  const tmp = `${o.idFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${id}\n`, { flag: 'wx' });
  try {
    await link(tmp, o.idFile);
    return { id, source: 'data-dir' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { id: (await read())!, source: 'data-dir' };
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
