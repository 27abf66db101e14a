import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AoError, isAoError } from '@ao/graphs';
import { systemClock } from '../../clock/mod.js';
import type { Clock } from '../../clock/mod.js';
import { log } from '../../log/mod.js';
import type { McpServerConfig } from './config.js';

/** A tool as the server lists it. */
export type McpTool = Pick<Tool, 'name' | 'description' | 'inputSchema' | 'annotations'> & Partial<Pick<Tool, 'outputSchema'>>;

export interface McpConnectionOptions {
  readonly clock?: Clock;
  /** Where restarts and a dead server's last stderr lines are reported (default: the process's logger, at warn). */
  readonly log?: (line: string) => void;
  /** First delay before reconnecting a server that died; doubled per failed attempt up to 30 s. */
  readonly restartDelayMs?: number;
}

const CLIENT_INFO = { name: 'agent-orchestrator', version: '0.1.0' };
const STDERR_LINES = 20;

/**
 * One MCP server, kept connected: the official SDK client over stdio (a child process) or
 * Streamable HTTP. When the server dies (the process exits, the connection drops), the calls in
 * flight fail at once with `AO_MCP_SERVER_FAILED` (the SDK rejects every pending request when its
 * transport closes) and the connection is restarted in the background with backoff; calls made
 * meanwhile wait for it, within their own timeout.
 *
 * @example
 * ```ts
 * const fs = new McpConnection('fs', { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/data'] });
 * const tools = await fs.start();
 * const result = await fs.call('read_text_file', { path: '/data/a.txt' }, { signal, timeoutMs: 10_000 });
 * ```
 */
export class McpConnection {
  private client: Client | undefined;
  private ready: Promise<Client> | undefined;
  private closed = false;
  private listed: McpTool[] = [];
  private readonly stderr: string[] = [];
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private cancelRestart = () => {};
  /** How many times the server was reconnected after dying. */
  restarts = 0;
  /** The child process id of a stdio server (for tests and diagnostics). */
  pid: number | undefined;

  constructor(
    readonly name: string,
    private readonly config: McpServerConfig,
    private readonly o: McpConnectionOptions = {},
  ) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? ((l) => log.warn(l, { component: 'mcp', server: name }));
  }

  /** Connect and list the tools. @throws AoError `AO_MCP_SERVER_FAILED` */
  async start(): Promise<McpTool[]> {
    await this.firstConnect();
    return this.listed;
  }

  /** Connect unless a connection or restart is under way; a failed attempt is forgotten so the next call tries again. */
  private firstConnect(): Promise<Client> {
    this.ready ??= this.connect().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /** The tools listed at the latest (re)connection. */
  tools(): readonly McpTool[] {
    return this.listed;
  }

  /**
   * Call a tool. `meta` travels as the request's `_meta` (the idempotency key of the call).
   * @throws AoError `AO_TOOL_TIMEOUT` past `timeoutMs`; `AO_MCP_SERVER_FAILED` when the server
   * died or cannot be reached; the signal's reason when it aborts.
   */
  async call(
    tool: string,
    args: Record<string, unknown>,
    o: { signal: AbortSignal; timeoutMs: number; meta?: Record<string, unknown> },
  ): Promise<CallToolResult> {
    const started = this.clock.now();
    const client = await this.connected(o.signal, o.timeoutMs);
    const left = Math.max(1, o.timeoutMs - (this.clock.now() - started));
    try {
      const res = await client.callTool({ name: tool, arguments: args, ...(o.meta ? { _meta: o.meta } : {}) }, undefined, { signal: o.signal, timeout: left });
      return res as CallToolResult;
    } catch (e) {
      if (o.signal.aborted) throw o.signal.reason;
      if (e instanceof McpError && e.code === ErrorCode.RequestTimeout) {
        throw new AoError('AO_TOOL_TIMEOUT', `MCP server "${this.name}": ${tool} did not answer within ${o.timeoutMs} ms`, {
          details: { server: this.name, tool },
          retryable: true,
          cause: e,
        });
      }
      if (e instanceof McpError && e.code === ErrorCode.ConnectionClosed) {
        throw new AoError('AO_MCP_SERVER_FAILED', `MCP server "${this.name}" stopped during the call of ${tool}${this.lastWords()}`, {
          details: { server: this.name, tool },
          retryable: true,
          cause: e,
        });
      }
      // Any other protocol error (unknown tool, invalid params) is the server's answer to this call.
      throw new AoError('AO_TOOL_FAILED', `MCP server "${this.name}": ${tool}: ${e instanceof Error ? e.message : String(e)}`, {
        details: { server: this.name, tool },
        cause: e,
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelRestart();
    const c = this.client;
    this.client = undefined;
    await c?.close().catch(() => undefined);
  }

  /** The live client, waiting (within the call's time and signal) for a reconnection in progress. */
  private async connected(signal: AbortSignal, timeoutMs: number): Promise<Client> {
    if (this.client) return this.client;
    if (this.closed) throw new AoError('AO_MCP_SERVER_FAILED', `MCP server "${this.name}" is closed`, { details: { server: this.name } });
    const ready = this.firstConnect();
    let cancel = () => {};
    let onAbort = () => {};
    try {
      return await new Promise<Client>((resolve, reject) => {
        cancel = this.clock.setTimer(timeoutMs, () =>
          reject(
            new AoError('AO_MCP_SERVER_FAILED', `MCP server "${this.name}" is not connected (restarting)${this.lastWords()}`, {
              details: { server: this.name },
              retryable: true,
            }),
          ),
        );
        onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        ready.then(resolve, reject);
      });
    } finally {
      cancel();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private transport(): Transport {
    const c = this.config;
    if ('command' in c) {
      const t = new StdioClientTransport({
        command: c.command,
        args: c.args,
        // The SDK passes only a safe subset of our environment (PATH, HOME, ...: no keys); add the configured variables.
        ...(c.env ? { env: { ...getDefaultEnvironment(), ...c.env } } : {}),
        ...(c.cwd ? { cwd: c.cwd } : {}),
        stderr: 'pipe',
      });
      // Drain stderr (a full pipe would block the server) and keep its last lines for error messages.
      t.stderr?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split(/\r?\n/)) {
          if (!line.trim()) continue;
          this.stderr.push(line.slice(0, 500));
          if (this.stderr.length > STDERR_LINES) this.stderr.shift();
        }
      });
      return t;
    }
    return new StreamableHTTPClientTransport(new URL(c.url), c.headers ? { requestInit: { headers: c.headers } } : undefined);
  }

  private async connect(): Promise<Client> {
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    const transport = this.transport();
    const timeout = this.config.connectTimeoutMs;
    try {
      await client.connect(transport, { timeout });
      const tools: McpTool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
      this.listed = tools;
    } catch (e) {
      await client.close().catch(() => undefined);
      if (isAoError(e)) throw e;
      throw new AoError(
        'AO_MCP_SERVER_FAILED',
        `MCP server "${this.name}" could not be started: ${e instanceof Error ? e.message : String(e)}${this.lastWords()}`,
        {
          details: { server: this.name },
          retryable: true,
          cause: e,
        },
      );
    }
    this.pid = transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : undefined;
    // Set after connecting: a close during the handshake is reported by the failed connect.
    client.onclose = () => this.died(client);
    this.client = client;
    return client;
  }

  /** The transport closed without our asking: restart with backoff until it works or we close. */
  private died(client: Client): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    this.log(`[mcp ${this.name}] the server stopped${this.lastWords()}; restarting`);
    let delay = this.o.restartDelayMs ?? 200;
    this.ready = new Promise<Client>((resolve, reject) => {
      const attempt = () => {
        this.cancelRestart = this.clock.setTimer(delay, () => {
          if (this.closed) return reject(new AoError('AO_MCP_SERVER_FAILED', `MCP server "${this.name}" is closed`, { details: { server: this.name } }));
          this.connect().then(
            (c) => {
              this.restarts += 1;
              this.log(`[mcp ${this.name}] restarted (${this.restarts})`);
              resolve(c);
            },
            (e) => {
              this.log(`[mcp ${this.name}] restart failed: ${(e as Error).message}`);
              delay = Math.min(30_000, delay * 2);
              attempt();
            },
          );
        });
      };
      attempt();
    });
    // Calls attach their own handlers; an unawaited restart must not reject unhandled.
    this.ready.catch(() => undefined);
  }

  private lastWords(): string {
    return this.stderr.length ? ` (stderr: ${this.stderr.slice(-3).join(' | ')})` : '';
  }
}
