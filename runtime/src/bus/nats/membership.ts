import type { KV } from '@nats-io/kv';
import type { Membership, NodeInfo } from '../port.js';
import { logger, NodeInfoSchema } from './wire.js';

/** Node membership in the `<P>_nodes` KV bucket, each entry expiring without heartbeats. */
export class NatsMembership implements Membership {
  constructor(private readonly kv: KV) {}

  async beat(info: NodeInfo): Promise<void> {
    await this.kv.put(info.id.replace(/[^A-Za-z0-9_=.-]/g, '_'), JSON.stringify(info));
  }

  async leave(id: string): Promise<void> {
    await this.kv.delete(id.replace(/[^A-Za-z0-9_=.-]/g, '_')).catch(() => undefined);
  }

  async list(): Promise<NodeInfo[]> {
    const out: NodeInfo[] = [];
    // `keys()` reads the bucket through a consumer: a node that beats while it runs is delivered
    // again (its new revision), so a key can come twice. Listed once each: that was the "4th node"
    // GET /nodes showed now and then in a cluster of three.
    const keys = new Set<string>();
    for await (const key of await this.kv.keys()) keys.add(key);
    for (const key of keys) {
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT' || !e.length) continue;
      try {
        out.push(NodeInfoSchema.parse(JSON.parse(e.string())));
      } catch {
        logger.warn(`ignored a malformed membership entry ${key}`);
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
