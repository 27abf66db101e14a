import { connectMcpServers, DeltaFeed, llmProfilesOf, LlmProfiles, ProfileLimiter, systemClock, withDeltas, withLimits } from '@ao/runtime';
import type { BucketTable, Config, LlmPort, McpServers, ToolDefinition } from '@ao/runtime';

/** The node's models and external tools: LLM adapters by profile, MCP servers, and the live delta feed. */
export interface Providers {
  /** The adapter of a node's `llm` profile (unknown profiles get `default`). */
  llm(profile: string): LlmPort;
  /** The `default` profile's adapter. */
  readonly defaultLlm: LlmPort;
  /** The tools of the configured MCP servers, to register beside the built-in and user tools. */
  readonly tools: readonly ToolDefinition[];
  /** Answers being written, by run: ephemeral, never journaled (see `DeltaFeed`). */
  readonly deltas: DeltaFeed;
  readonly mcp: McpServers;
  /** Profiles (provider, model, base URL; no keys) and MCP servers, for /health. */
  describe(): { llm: Record<string, unknown>; mcp: Record<string, unknown> };
  close(): Promise<void>;
}

/**
 * Build the LLM adapters of the configured profiles (or use `o.llm` for every profile, as tests
 * do) and connect the MCP servers of `AO_MCP_SERVERS`. A profile with `limits` waits for capacity
 * in `o.buckets` (the cluster's shared table) before each call.
 */
export async function startProviders(config: Config, o: { llm?: LlmPort; env?: NodeJS.ProcessEnv; buckets?: BucketTable } = {}): Promise<Providers> {
  const deltas = new DeltaFeed();
  const configured = llmProfilesOf(config);
  const profiles = o.llm ? undefined : new LlmProfiles(configured, { env: o.env ?? process.env });
  const ports = new Map<string, LlmPort>();
  const limited = (profile: string, port: LlmPort): LlmPort => {
    // Limits belong to the profile a node's `llm` resolves to (an unknown one is `default`).
    const name = profiles?.nameOf(profile) ?? (profile in configured ? profile : 'default');
    const limits = configured[name]?.limits;
    return limits && o.buckets ? withLimits(port, new ProfileLimiter(o.buckets, name, limits, systemClock)) : port;
  };
  const resolve = (profile: string): LlmPort => {
    const inner = o.llm ?? profiles!.resolve(profile);
    let port = ports.get(inner.provider + '\0' + profile);
    if (!port) {
      port = withDeltas(limited(profile, inner), deltas);
      ports.set(inner.provider + '\0' + profile, port);
    }
    return port;
  };
  const mcp = await connectMcpServers(config.AO_MCP_SERVERS);
  return {
    llm: resolve,
    defaultLlm: resolve('default'),
    tools: mcp.tools,
    deltas,
    mcp,
    describe: () => ({ llm: profiles?.describe() ?? { default: { provider: o.llm!.provider } }, mcp: mcp.describe() }),
    close: () => mcp.close(),
  };
}
