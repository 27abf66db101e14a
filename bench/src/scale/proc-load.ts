import { readdir, readFile } from 'node:fs/promises';

const TICKS_PER_SEC = 100; // USER_HZ on Linux

/** A process's CPU time so far (user + system), in seconds, or undefined once it is gone. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) in parentheses: utime is the 14th, stime the 15th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

/** The pids whose command (`/proc/<pid>/comm`) is `comm`, with their command lines. */
export async function processesNamed(comm: string): Promise<Array<{ pid: number; cmdline: string }>> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if ((await readFile(`/proc/${d}/comm`, 'utf8')).trim() !== comm) continue;
      out.push({ pid: Number(d), cmdline: (await readFile(`/proc/${d}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds of a set of processes, summed (those gone meanwhile count what they had at the start). */
export class CpuMeter {
  private constructor(private readonly start: Map<number, number>) {}

  static async of(pids: number[]): Promise<CpuMeter> {
    const m = new Map<number, number>();
    for (const p of pids) {
      const s = await cpuSeconds(p);
      if (s !== undefined) m.set(p, s);
    }
    return new CpuMeter(m);
  }

  /** CPU seconds used since `of`, by the processes still alive. */
  async used(): Promise<number> {
    let sum = 0;
    for (const [p, s0] of this.start) {
      const s = await cpuSeconds(p);
      if (s !== undefined) sum += Math.max(0, s - s0);
    }
    return sum;
  }
}
