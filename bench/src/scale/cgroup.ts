import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';
const PERIOD_US = 100_000;

/** Throttling of a group so far: periods with work, periods cut short by the quota, time held back. */
export interface Throttling {
  periods: number;
  throttled: number;
  throttledMs: number;
}

/** A cgroup with a CPU quota that processes are put into; `remove` moves them out and deletes it. */
export interface CpuGroup {
  readonly path: string;
  readonly version: 1 | 2;
  /** CPUs the group may use (quota / period). */
  readonly cpus: number;
  add(pid: number): Promise<void>;
  throttling(): Promise<Throttling>;
  remove(): Promise<void>;
}

/** Parse `cpu.stat`: v1 has nr_periods, nr_throttled, throttled_time (ns); v2 the same with throttled_usec. */
export function parseCpuStat(text: string): Throttling {
  const kv = new Map(
    text
      .split('\n')
      .map((l) => l.trim().split(/\s+/) as [string, string])
      .filter((x) => x.length === 2)
      .map(([k, v]) => [k, Number(v)]),
  );
  const throttledMs = kv.has('throttled_usec') ? kv.get('throttled_usec')! / 1_000 : (kv.get('throttled_time') ?? 0) / 1_000_000;
  return { periods: kv.get('nr_periods') ?? 0, throttled: kv.get('nr_throttled') ?? 0, throttledMs };
}

/**
 * Make a group `name` allowed `cpus` CPUs: cgroup v1's cpu controller (cpu.cfs_period_us and
 * cpu.cfs_quota_us) where it is mounted and writable, else cgroup v2 (`cpu.max`, with the cpu
 * controller enabled for the root's children). `weight`: the group's share when CPUs are contended,
 * in processes' worth (v1 cpu.shares = weight x 1024, v2 cpu.weight = weight x 100). Needs root;
 * returns why not otherwise.
 */
export async function cpuGroup(name: string, cpus: number, o: { weight?: number } = {}): Promise<CpuGroup | { unavailable: string }> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad cgroup name ${name}`);
  const quota = Math.max(1_000, Math.round(cpus * PERIOD_US));
  try {
    if (existsSync(join(V1, 'cpu.cfs_quota_us'))) {
      const path = join(V1, name);
      await mkdir(path, { recursive: true });
      await writeFile(join(path, 'cpu.cfs_period_us'), String(PERIOD_US));
      await writeFile(join(path, 'cpu.cfs_quota_us'), String(quota));
      // Weight against the root group's processes (each 1024): the quota is then what the group gets on a busy machine, not only its cap.
      if (o.weight) await writeFile(join(path, 'cpu.shares'), String(Math.round(o.weight * 1024)));
      return group(path, 1, cpus, join(V1, 'cgroup.procs'));
    }
    if (existsSync(join(V2, 'cgroup.controllers'))) {
      const controllers = await readFile(join(V2, 'cgroup.controllers'), 'utf8');
      if (!controllers.split(/\s+/).includes('cpu')) return { unavailable: 'cgroup v2 without the cpu controller' };
      await writeFile(join(V2, 'cgroup.subtree_control'), '+cpu').catch(() => undefined);
      const path = join(V2, name);
      await mkdir(path, { recursive: true });
      await writeFile(join(path, 'cpu.max'), `${quota} ${PERIOD_US}`);
      if (o.weight) await writeFile(join(path, 'cpu.weight'), String(Math.min(10_000, Math.round(o.weight * 100))));
      return group(path, 2, cpus, join(V2, 'cgroup.procs'));
    }
    return { unavailable: 'no cgroup cpu controller at /sys/fs/cgroup' };
  } catch (e) {
    return { unavailable: `cannot make cgroup ${name}: ${(e as Error).message}` };
  }
}

function group(path: string, version: 1 | 2, cpus: number, rootProcs: string): CpuGroup {
  return {
    path,
    version,
    cpus,
    add: (pid) => writeFile(join(path, 'cgroup.procs'), String(pid)),
    throttling: async () => parseCpuStat(await readFile(join(path, 'cpu.stat'), 'utf8')),
    remove: async () => {
      // A group with processes cannot be removed: move any left (a node that did not exit) to the root.
      const left = (await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
      for (const pid of left) await writeFile(rootProcs, pid).catch(() => undefined);
      for (let i = 0; i < 20; i++) {
        try {
          await rmdir(path);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      console.error(`[bench] could not remove cgroup ${path}`);
    },
  };
}
