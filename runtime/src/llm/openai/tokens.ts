import type { LlmRequest } from '../port.js';
import { promptTokenEstimate } from '../port.js';

/**
 * What an OpenAI chat request's prompt counts, in OpenAI's own tokens (`gpt-tokenizer`), so the
 * budget reserves what the call can really cost rather than a character estimate. The tokenizer's
 * tables are loaded on first use (about half a second), not at start-up.
 */
type Encoding = 'o200k_base' | 'cl100k_base';
type Count = (text: string) => number;

const loading = new Map<Encoding, Promise<Count>>();
function counter(e: Encoding): Promise<Count> {
  let p = loading.get(e);
  if (!p) {
    p = (e === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base')).then(
      (m) => (text: string) => m.countTokens(text),
    );
    loading.set(e, p);
  }
  return p;
}

/** The encoding of an OpenAI model by its name; undefined for a model it does not know (another server's model behind the OpenAI API). */
export function encodingOf(model: string): Encoding | undefined {
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4)/.test(model)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5)/.test(model)) return 'cl100k_base';
  return undefined;
}

/** Added when tools are offered: the provider frames the schemas it renders (their JSON, counted, is already more than it renders). */
const TOOLS_FRAME = 16;

/**
 * The prompt tokens of a chat request to `model`: 3 priming the answer, per message 4 of framing
 * plus its content (and a tool message's name and call id, an assistant message's tool calls as
 * JSON), plus the tool schemas as JSON. For a model whose tokenizer is not known, the runtime's
 * character estimate.
 */
export async function countOpenAiPrompt(model: string, req: Pick<LlmRequest, 'messages' | 'tools'>): Promise<number> {
  const e = encodingOf(model);
  if (!e) return promptTokenEstimate(req);
  const count = await counter(e);
  let n = 3;
  for (const m of req.messages) {
    n += 4 + count(m.content);
    if (m.role === 'tool') n += count(m.name) + count(m.toolCallId);
    if (m.role === 'assistant' && m.toolCalls?.length)
      n += count(JSON.stringify(m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }))));
  }
  if (req.tools?.length)
    n +=
      TOOLS_FRAME +
      count(JSON.stringify(req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }))));
  return n;
}
