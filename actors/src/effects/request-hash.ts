import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { canonicalJson } from '@ao/graphs';
import type { LlmRequest } from '@ao/runtime';

/**
 * An LLM request's content hash (`contentHash` of its normalised content: sha256 of the canonical
 * JSON of `{maxTokens, messages, model, profile, temperature, tools}`), computed without
 * serialising the whole conversation on every turn.
 *
 * An agent loop sends the same messages array with every call, one turn longer each time, so
 * hashing it whole makes a conversation of n turns cost O(n^2) (4.5 of the 8 s a 1,000-turn
 * conversation took to resume, issue 22). The canonical JSON of the content starts with
 * `{"maxTokens":N,"messages":[` followed by each message's canonical JSON (keys sorted: maxTokens,
 * messages, model, profile, temperature, tools), so the sha256 state after the messages sent so
 * far is kept (a `Hash` copy, per messages array) and only the new messages are fed to it. The
 * digest is the same as `contentHash`'s (tests compare them).
 *
 * The messages so far are recognised by identity (the same objects, in the same places): an array
 * whose earlier elements were replaced is hashed whole again. Messages are never changed in place
 * (the agent loop only appends new ones), which identity alone cannot see.
 */
interface Prefix {
  /** `{"maxTokens":N,"messages":[`: a request with another N starts again. */
  head: string;
  /** The messages fed so far, by identity. */
  fed: unknown[];
  /** The sha256 state after `head` and those messages (with their commas). */
  hash: Hash;
}

const prefixes = new WeakMap<readonly unknown[], Prefix>();

/** The normalised content an LLM request's hash covers (what a recorded replay compares). */
export function llmRequestContent(r: LlmRequest) {
  return { profile: r.profile, model: r.model ?? null, maxTokens: r.maxTokens, temperature: r.temperature ?? null, messages: r.messages, tools: r.tools ?? [] };
}

/** `contentHash(llmRequestContent(r))`, reusing the hash state of the same messages array's earlier requests. */
export function llmRequestHash(r: LlmRequest): string {
  const messages = r.messages as readonly unknown[];
  const head = `{"maxTokens":${canonicalJson(r.maxTokens)},"messages":[`;
  let p = prefixes.get(messages);
  if (!p || p.head !== head || p.fed.length > messages.length || p.fed.some((m, i) => m !== messages[i])) {
    p = { head, fed: [], hash: createHash('sha256').update(head) };
  }
  const h = p.hash;
  for (let i = p.fed.length; i < messages.length; i++) {
    h.update(i === 0 ? canonicalJson(messages[i]) : `,${canonicalJson(messages[i])}`);
    p.fed.push(messages[i]);
  }
  // The state goes on from here next time; the digest is taken from a copy.
  prefixes.set(messages, { head, fed: p.fed, hash: h.copy() });
  const rest = canonicalJson({ model: r.model ?? null, profile: r.profile, temperature: r.temperature ?? null, tools: r.tools ?? [] });
  return h.update(`],${rest.slice(1)}`).digest('hex');
}
