/**
 * What every system's workload calls instead of a model and a tool: an instant, deterministic LLM
 * stand-in and a no-op tool, so a step costs nothing but the orchestration around it. Ours uses
 * its own offline LLM at 0 ms and the `noop` tool (the same shape: a text answer, `{ ok: true }`);
 * the peers call these.
 */
export async function fakeLlm(prompt: string): Promise<string> {
  return `answer to ${prompt.length > 60 ? prompt.slice(0, 60) : prompt}`;
}

export async function noopTool(_args: Record<string, unknown>): Promise<{ ok: true }> {
  return { ok: true };
}

/**
 * The crash-resume workload's tool at step 3. In the process that is about to be killed
 * (`BENCH_HANG=1`) it never returns, so every run is caught in flight at that step; in the restarted
 * process it returns at once and records when it was first called again (the resumed step).
 */
export const hang = {
  hung: 0,
  resumed: [] as number[],
  onHung: undefined as (() => void) | undefined,
};

export async function hangTool(): Promise<{ ok: true }> {
  if (process.env.BENCH_HANG === '1') {
    hang.hung++;
    hang.onHung?.();
    return new Promise<never>(() => undefined);
  }
  hang.resumed.push(performance.now());
  return { ok: true };
}
