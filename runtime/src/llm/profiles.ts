import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Clock } from '../clock/mod.js';
import { LlmLimitsSchema } from './limits/mod.js';
import type { LlmLimits } from './limits/mod.js';
import { AnthropicLlm } from './anthropic/mod.js';
import { OfflineLlm } from './offline/mod.js';
import { OpenAiLlm } from './openai/mod.js';
import type { LlmPort, LlmRequest } from './port.js';

/**
 * The most output a call through the profile may ask for: a node's `maxTokens` (1,024 unless it
 * says) is lowered to it, and so is what the budget reserves for the call's output.
 */
const maxTokens = z.number().int().positive().optional();

/** The provider's limits, shared by every node that calls through the profile (see `LlmLimitsSchema`). */
const limits = LlmLimitsSchema.optional();

const http = {
  /** The model a request gets when it names none. */
  model: z.string().min(1),
  maxTokens,
  limits,
  /** The key itself (prefer `apiKeyEnv`: keys do not belong in JSON config). */
  apiKey: z.string().min(1).optional(),
  /** The environment variable holding the key. */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .optional(),
  headers: z.record(z.string(), z.string()).optional(),
  query: z.record(z.string(), z.string()).optional(),
  stream: z.boolean().optional(),
  timeoutMs: z.number().int().positive().max(3_600_000).optional(),
  idleTimeoutMs: z.number().int().positive().max(3_600_000).optional(),
  maxRetries: z.number().int().min(0).max(10).optional(),
  baseDelayMs: z.number().int().min(0).max(60_000).optional(),
  maxDelayMs: z.number().int().min(0).max(600_000).optional(),
};

/**
 * One LLM profile: which provider answers the nodes whose `llm` names it, and how. Profiles come
 * from `AO_LLM_PROFILES` (JSON, by name); without one, `default` follows the standard provider
 * variables (see {@link llmProfilesOf}).
 */
export const LlmProfileSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('offline'),
    model: z.string().min(1).optional(),
    latencyMs: z.number().int().min(0).max(60_000).optional(),
    maxTokens,
    limits,
  }),
  z.strictObject({
    provider: z.literal('openai'),
    baseUrl: z.url().default('https://api.openai.com/v1'),
    maxTokensParam: z.enum(['max_tokens', 'max_completion_tokens']).optional(),
    ...http,
  }),
  z.strictObject({ provider: z.literal('anthropic'), baseUrl: z.url().default('https://api.anthropic.com'), ...http }),
]);
export type LlmProfile = z.infer<typeof LlmProfileSchema>;
export const LlmProfilesSchema = z.record(z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/), LlmProfileSchema);

export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';
export const DEFAULT_ANTHROPIC_MODEL = 'claude-sonnet-4-5';

/** What the profiles are built from: the config's LLM keys. */
export interface LlmEnv {
  AO_LLM_PROFILES?: Record<string, LlmProfile> | undefined;
  OPENAI_API_KEY?: string | undefined;
  OPENAI_BASE_URL?: string | undefined;
  ANTHROPIC_API_KEY?: string | undefined;
  ANTHROPIC_BASE_URL?: string | undefined;
  AO_LLM_MODEL?: string | undefined;
  AO_LLM_LATENCY_MS?: number | undefined;
  AO_LLM_TIMEOUT_MS?: number | undefined;
  AO_LLM_MAX_RETRIES?: number | undefined;
}

/**
 * The profiles in force. `default` is, in order: the `default` of `AO_LLM_PROFILES`; an
 * OpenAI-compatible endpoint when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set (a local Ollama
 * needs no key); Anthropic when `ANTHROPIC_API_KEY` is set; else the offline model. `AO_LLM_MODEL`
 * names the model of that env-made default.
 */
export function llmProfilesOf(c: LlmEnv): Record<string, LlmProfile> {
  const defaults = {
    ...(c.AO_LLM_TIMEOUT_MS ? { timeoutMs: c.AO_LLM_TIMEOUT_MS } : {}),
    ...(c.AO_LLM_MAX_RETRIES !== undefined ? { maxRetries: c.AO_LLM_MAX_RETRIES } : {}),
  };
  let fallback: LlmProfile;
  if (c.OPENAI_API_KEY || c.OPENAI_BASE_URL) {
    fallback = {
      provider: 'openai',
      baseUrl: c.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
      model: c.AO_LLM_MODEL ?? DEFAULT_OPENAI_MODEL,
      ...(c.OPENAI_API_KEY ? { apiKey: c.OPENAI_API_KEY } : {}),
      ...defaults,
    };
  } else if (c.ANTHROPIC_API_KEY) {
    fallback = {
      provider: 'anthropic',
      baseUrl: c.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com',
      model: c.AO_LLM_MODEL ?? DEFAULT_ANTHROPIC_MODEL,
      apiKey: c.ANTHROPIC_API_KEY,
      ...defaults,
    };
  } else {
    fallback = {
      provider: 'offline',
      ...(c.AO_LLM_LATENCY_MS ? { latencyMs: c.AO_LLM_LATENCY_MS } : {}),
      ...(c.AO_LLM_MODEL ? { model: c.AO_LLM_MODEL } : {}),
    };
  }
  const given = Object.fromEntries(Object.entries(c.AO_LLM_PROFILES ?? {}).map(([k, p]) => [k, p.provider === 'offline' ? p : { ...defaults, ...p }]));
  return { default: fallback, ...given };
}

/** A profile as `/health` may show it: never its key or headers. */
export function describeProfile(p: LlmProfile): { provider: string; model?: string; baseUrl?: string; limits?: LlmLimits } {
  return {
    provider: p.provider,
    ...(p.model ? { model: p.model } : {}),
    ...('baseUrl' in p ? { baseUrl: p.baseUrl } : {}),
    ...(p.limits ? { limits: p.limits } : {}),
  };
}

/** Build one adapter; `env` resolves `apiKeyEnv`. */
export function createLlm(name: string, p: LlmProfile, o: { env?: NodeJS.ProcessEnv; clock?: Clock; fetch?: typeof fetch } = {}): LlmPort {
  const port = adapterOf(name, p, o);
  if (p.maxTokens === undefined) return port;
  const cap = p.maxTokens;
  return {
    provider: port.provider,
    maxOutputTokens: cap,
    complete: (req, signal, options) => port.complete(req, signal, options),
    ...(port.countPromptTokens ? { countPromptTokens: (req: LlmRequest) => port.countPromptTokens!(req) } : {}),
  };
}

function adapterOf(name: string, p: LlmProfile, o: { env?: NodeJS.ProcessEnv; clock?: Clock; fetch?: typeof fetch }): LlmPort {
  if (p.provider === 'offline')
    return new OfflineLlm({
      ...(p.latencyMs ? { latencyMs: p.latencyMs } : {}),
      ...(p.model ? { model: p.model } : {}),
      ...(o.clock ? { clock: o.clock } : {}),
    });
  let apiKey = p.apiKey;
  if (p.apiKeyEnv) {
    apiKey = (o.env ?? process.env)[p.apiKeyEnv];
    if (!apiKey) throw new AoError('AO_CONFIG_INVALID', `LLM profile "${name}": ${p.apiKeyEnv} (its apiKeyEnv) is not set`, { field: 'AO_LLM_PROFILES' });
  }
  const policy = Object.fromEntries(
    (['timeoutMs', 'idleTimeoutMs', 'maxRetries', 'baseDelayMs', 'maxDelayMs'] as const).filter((k) => p[k] !== undefined).map((k) => [k, p[k]]),
  );
  const common = {
    baseUrl: p.baseUrl,
    model: p.model,
    ...(apiKey ? { apiKey } : {}),
    ...(p.headers ? { headers: p.headers } : {}),
    ...(p.query ? { query: p.query } : {}),
    ...(p.stream !== undefined ? { stream: p.stream } : {}),
    policy,
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
  };
  return p.provider === 'openai' ? new OpenAiLlm({ ...common, ...(p.maxTokensParam ? { maxTokensParam: p.maxTokensParam } : {}) }) : new AnthropicLlm(common);
}

/**
 * Adapters by profile, built once each. A node naming a profile that is not configured gets
 * `default`: graphs stay portable between a laptop with one model and a cluster with several.
 */
export class LlmProfiles {
  private readonly ports = new Map<string, LlmPort>();

  constructor(
    readonly profiles: Readonly<Record<string, LlmProfile>>,
    o: { env?: NodeJS.ProcessEnv; clock?: Clock; fetch?: typeof fetch } = {},
  ) {
    for (const [name, p] of Object.entries(profiles)) this.ports.set(name, createLlm(name, p, o));
  }

  /** The adapter of a profile (or of `default`). */
  resolve(profile: string): LlmPort {
    return this.ports.get(this.nameOf(profile))!;
  }

  /** The profile a node's `llm` resolves to: itself when configured, else `default`. */
  nameOf(profile: string): string {
    return this.ports.has(profile) ? profile : 'default';
  }

  /** Profile name to provider, model and base URL (no secrets). */
  describe(): Record<string, ReturnType<typeof describeProfile>> {
    return Object.fromEntries(Object.entries(this.profiles).map(([k, p]) => [k, describeProfile(p)]));
  }
}
