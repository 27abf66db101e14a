/**
 * W6's conversation, the same on every system: an agent that reads `turns` pages, one tool call a
 * turn, then answers. Each model request carries the whole history (system, user, every assistant
 * message and tool result so far), as a real agent loop does, so a request grows by about 1 KB a
 * turn and a store that keeps each request whole grows with the square of the turns.
 *
 * The model is a deterministic stand-in: asked with the tool offered and pages left to read, it
 * asks for the next page; otherwise it answers. The tool returns a page of seeded pseudo-random
 * words (new, deterministic content that does not compress to nothing).
 */

export const W6_TOOL = 'read_page';
/** Characters (ASCII, so bytes) of a page's text. */
export const PAGE_CHARS = 1024;
export const W6_SYSTEM = `You read pages with ${W6_TOOL}, one at a time, until you have read them all; then you answer.`;
export const w6User = (turns: number): string => `Read pages 1 to ${turns} and tell me how many you read.`;

/** mulberry32: a small seeded PRNG, so page `i` is the same text on every system and every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Page `i`'s text: words of 2-9 random letters, a sentence every 6-15 words, exactly `PAGE_CHARS` long. */
export function pageText(i: number): string {
  const r = rng(0x5eed0000 + i);
  let out = '';
  let left = 0;
  while (out.length < PAGE_CHARS) {
    if (left === 0) left = 6 + Math.floor(r() * 10);
    let w = '';
    const len = 2 + Math.floor(r() * 8);
    for (let k = 0; k < len; k++) w += String.fromCharCode(97 + Math.floor(r() * 26));
    left--;
    out += w + (left === 0 ? '. ' : ' ');
  }
  return out.slice(0, PAGE_CHARS);
}

/** What the tool returns for page `i`. */
export const pageResult = (i: number): { page: number; text: string } => ({ page: i, text: pageText(i) });

/**
 * The tool message's content: the result's JSON with its keys sorted (ours renders a tool result
 * to the model as canonical JSON; the peers send the same text).
 */
export const pageContent = (i: number): string => JSON.stringify(pageResult(i));

/** The model's answer on a turn: ask for the next page, or (no tool offered, or all read) the final answer. */
export type StandinAnswer = { content: string; call?: { id: string; name: string; args: { page: number } } };

/** The stand-in model: `read` pages read so far (tool results in the history), `turns` to read in all. */
export function standinAnswer(read: number, turns: number, toolOffered: boolean): StandinAnswer {
  if (!toolOffered || read >= turns) return { content: `I read ${read} pages.` };
  const page = read + 1;
  return { content: `Reading page ${page}.`, call: { id: `call_${page}`, name: W6_TOOL, args: { page } } };
}

/**
 * The bytes of the conversation's unique content: every message's content once (system, user,
 * each assistant message with its tool call's id, name and arguments, each tool result, the final
 * answer). What a store that keeps each thing once would have to keep, before its own overhead.
 */
export function uniqueContentBytes(turns: number): number {
  const b = (s: string) => Buffer.byteLength(s, 'utf8');
  let n = b(W6_SYSTEM) + b(w6User(turns));
  for (let read = 0; read < turns; read++) {
    const a = standinAnswer(read, turns, true);
    n += b(a.content) + b(a.call!.id) + b(a.call!.name) + b(JSON.stringify(a.call!.args)) + b(pageContent(read + 1));
  }
  return n + b(standinAnswer(turns, turns, false).content);
}

/** The turn at which the crash-resume process is killed (its tool call never returns there): 90% of the way. */
export const killTurn = (turns: number): number => Math.max(1, Math.ceil(turns * 0.9));

/**
 * W6's tool (`read_page`). In the process about to be killed (`BENCH_HANG=1`), the call for page
 * `BENCH_W6_KILL_AT` never returns, so the conversation is caught in flight at that turn; in the
 * restarted process that call returns at once and records when it was first made again.
 */
export const w6Hang = {
  hung: false,
  resumedAt: undefined as number | undefined,
  onHung: undefined as (() => void) | undefined,
};

export async function readPage(page: number): Promise<{ page: number; text: string }> {
  if (page === Number(process.env.BENCH_W6_KILL_AT ?? '0')) {
    if (process.env.BENCH_HANG === '1') {
      w6Hang.hung = true;
      w6Hang.onHung?.();
      return new Promise<never>(() => undefined);
    }
    w6Hang.resumedAt ??= performance.now();
  }
  return pageResult(page);
}
