import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';

/** Server used by the NATS suites; CI and the dev machines run one with JetStream on 127.0.0.1:4222. */
export const TEST_NATS_URL = process.env.AO_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

let reachable: Promise<boolean> | undefined;

/** Whether the NATS suites can run; under CI an unreachable server throws instead of skipping. */
export function natsAvailable(): Promise<boolean> {
  reachable ??= (async () => {
    const why = await natsUnreachable(TEST_NATS_URL);
    if (why === undefined) return true;
    if (process.env.CI) throw new Error(`CI is set but NATS at ${TEST_NATS_URL} is unreachable: ${why}`);
    console.warn(`[tests] NATS at ${TEST_NATS_URL} unreachable: NATS suites skipped (they run under CI)`);
    return false;
  })();
  return reachable;
}

/** Why NATS (with JetStream) at `url` cannot be used, or undefined when it answers. */
export async function natsUnreachable(url: string): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, timeout: 2000, reconnect: false });
    const info = nc.info;
    await nc.close();
    if (info && info.jetstream === false) return 'JetStream is not enabled';
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** A prefix of streams, subjects and buckets no other test uses. */
export const natsPrefix = (what = 't'): string => `${what}${randomBytes(5).toString('hex')}`;

/** Delete the streams (and KV bucket) a test created under `prefix`. */
export async function dropNatsPrefix(prefix: string, url = TEST_NATS_URL): Promise<void> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: url, timeout: 2000, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    const P = prefix.toUpperCase();
    for (const s of [`${P}_EVENTS`, `${P}_WORK`, `${P}_DLQ`, `KV_${prefix}_nodes`]) await jsm.streams.delete(s).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
