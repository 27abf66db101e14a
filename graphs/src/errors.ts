/**
 * The one catalogue of stable error codes. A code is never renamed or reused once shipped;
 * the gateway maps every code here to an HTTP status (gateway/src/http/errors.ts) and a test
 * fails if one is missing.
 */
export const ERROR_CODES = {
  // graph definition (graphs/)
  AO_GRAPH_INVALID_NAME: 'A graph needs a non-empty name of letters, digits, "-" or "_".',
  AO_GRAPH_DUPLICATE_NODE: 'A node id was declared twice.',
  AO_GRAPH_RESERVED_NODE_ID: 'A node id is reserved (e.g. "input").',
  AO_GRAPH_UNKNOWN_AGENT: 'A node names an agent kind that does not exist.',
  AO_GRAPH_INVALID_NODE_OPTIONS: 'A node option has the wrong type or range.',
  AO_GRAPH_UNKNOWN_NODE: 'An edge names a node that was not declared.',
  AO_GRAPH_DUPLICATE_EDGE: 'The same edge was declared twice.',
  AO_GRAPH_NO_ENTRY: 'No node lacks a predecessor, so the graph has no entry node.',
  AO_GRAPH_UNREACHABLE_NODE: 'A node cannot be reached from any entry node.',
  AO_GRAPH_UNBOUNDED_CYCLE: 'A cycle has no node with maxIterations, so it could run forever.',
  AO_GRAPH_INVALID_BUDGET: 'A budget limit is not a positive number.',
  AO_GRAPH_UNKNOWN_TOOL: 'A node lists a tool that is not in the tool registry.',
  AO_GRAPH_EMPTY: 'A graph has no nodes.',
  AO_GRAPH_ALREADY_REGISTERED: 'A different graph with this name is already registered.',
  // HTTP / boundary
  AO_BAD_JSON: 'The request body is not valid JSON.',
  AO_VALIDATION: 'The input does not match its schema; `field` names the first failing field.',
  AO_GRAPH_NOT_FOUND: 'No graph with this name is registered.',
  AO_RUN_NOT_FOUND: 'No run with this id exists.',
  AO_RUN_EXISTS:
    'A run with this id (or its log) is already stored: an import never overwrites it; import it under a new id (`ao import FILE --as UUID`), or into another store.',
  AO_RUN_FILE_INVALID:
    'A run file (`ao export`, format ao-run) is not valid JSON of a known version, or does not match its schema; `field` names the first failing field.',
  AO_RUN_NOT_FINISHED: 'Only a finished run can be exported or imported (it is pending, running or waiting).',
  AO_RUN_ID_AMBIGUOUS: 'A run id prefix matches more than one run; `details.candidates` lists them (give more characters).',
  AO_ROUTE_NOT_FOUND: 'No such route.',
  AO_PAYLOAD_TOO_LARGE: 'The request body is larger than allowed.',
  AO_UNSUPPORTED_MEDIA_TYPE: 'The request body must be application/json.',
  AO_INTERNAL: 'An unexpected error; the server log has the cause.',
  // streams (WebSocket)
  AO_UPGRADE_REQUIRED: 'A stream route was requested without a WebSocket upgrade.',
  AO_STREAM_CURSOR_AHEAD: 'The stream `after` is past the last seq of the run.',
  AO_STREAM_BEHIND: 'A stream client read too slowly and was let go; reconnect with after=<last seq received>.',
  // runtime
  AO_ENVELOPE_INVALID: 'A bus message is not a valid envelope.',
  AO_STORE_CORRUPT: 'A stored row does not match its schema.',
  AO_TOOL_NOT_FOUND: 'A tool was called that is not registered.',
  AO_TOOL_ARGS_INVALID: 'Tool arguments do not match the tool input schema; `field` names the field.',
  AO_TOOL_FAILED: 'A tool handler threw.',
  AO_TOOL_NOT_ALLOWED: 'A node called a tool it does not list.',
  AO_LLM_FAILED: 'The LLM call failed.',
  AO_LLM_OUTPUT_INVALID: 'The LLM returned output that does not match the expected shape.',
  AO_NODE_TIMEOUT: 'A node ran longer than its timeoutSec.',
  AO_NODE_FAILED: 'A node failed after its retries.',
  AO_EDGE_PREDICATE_FAILED: 'An edge predicate (`when`) or `args` mapper threw.',
  AO_NODE_CANCELLED: 'A node was stopped because its run ended first.',
  AO_EFFECT_UNKNOWN_OUTCOME: 'An unsafe tool call was in flight at a crash and its outcome is unknown; the run waits for a person.',
  AO_GRAPH_VERSION_CHANGED: 'The graph changed since the run started and declares no migration from its version.',
  AO_RUN_NOT_ACTIVE: 'The run has already ended.',
  AO_RUN_NOT_WAITING: 'The run is not waiting for an answer from this node (it ended, or the node asks nothing).',
  AO_WAIT_TIMED_OUT: 'Nobody answered a wait (approval or question) within its timeoutSec, and its timeout action is to fail.',
  AO_CHECKPOINT_NOT_FOUND: 'No checkpoint with this step exists for the run.',
  AO_RUN_CANCELLED: 'The run was cancelled.',
  AO_BUDGET_EXCEEDED: 'A budget limit was reached; the run stopped (details name the limit, its value, the amount used and the actor).',
  AO_BUDGET_TOOL_CAP: 'A per-tool cap was reached: that tool is refused, the run goes on.',
  AO_BUDGET_UNAVAILABLE: 'The budget actor did not answer in time; no call is approved without it.',
  AO_BUDGET_OVERRIDE_LOOSENS: 'A run budget may only tighten the graph budget unless the graph allows more.',
  AO_RUN_STRANDED: 'The run ended with a node neither finished nor skipped.',
  AO_RUN_INTERRUPTED: 'The process hosting the run stopped while it was running.',
  AO_CONFIG_INVALID: 'An environment variable or config value is invalid.',
  AO_LEASE_LOST: 'This node no longer holds the run: another node took it over (its lease had lapsed), so nothing was written.',
  AO_BUS_NO_RESPONDER: 'Nobody on the bus answers this request (e.g. the node that hosted a run is gone).',
  AO_BUS_UNAVAILABLE: 'The bus did not answer in time, or is unreachable (NATS restarting).',
  AO_NODE_ID_IN_USE:
    'A live process (its heartbeat is fresh) holds this runtime node id: a node refuses to start with it rather than take its runs, and a node whose id another process took over stops (details: its host, pid and last heartbeat).',
  AO_DATA_DIR_LOCKED:
    'Another live process holds the embedded data directory (AO_DATA_DIR): one process at a time may open it, so this one did not (details: its pid, host, command and, for `ao serve`, the url of its HTTP API, which the CLI then uses).',
  AO_TASK_STOPPED: 'A node task (a node execution or swarm branch run on another node) was stopped, or handed to another holder: it writes nothing more.',
  // replay and fork
  AO_REPLAY_STEP_OUT_OF_RANGE: 'fromStep is past the last step of the run that can be replayed (details give maxStep).',
  AO_REPLAY_INCOMPATIBLE: 'The graph registered now cannot continue the checkpoint (a node it names is gone, or an override names an unknown node or tool).',
  AO_REPLAY_DIVERGED: 'A recorded replay did something else than the original (details: step, actor, both envelopes, a readable diff).',
  AO_REPLAY_UNSAFE_TOOL: 'A replay reached an unsafe tool with no recorded result; it is not called live unless overrides.allowUnsafe names it.',
  // real LLM providers and MCP tools
  AO_LLM_RATE_LIMITED:
    "The LLM provider kept answering 429 after the retries, or asked to wait longer than allowed (details: status, retryAfterMs, attempts), or the profile's shared limits had no capacity within maxWaitMs (details: profile, limit, scope, waitMs).",
  AO_LLM_TIMEOUT: 'An LLM call got no complete answer within its timeout, or its stream stalled, on every attempt.',
  AO_TOOL_TIMEOUT: 'A tool call (e.g. on an MCP server) did not answer within its timeout.',
  AO_MCP_SERVER_FAILED: 'An MCP server could not be started, or stopped during a call (it is restarted; the call failed).',
  AO_SUPERVISOR_ROUTE_INVALID: 'A supervisor chose a next node that is not one of its successors in the graph.',
  // gateway: auth, tenants and limits
  AO_UNAUTHORIZED: 'The request carries no API key, or one that is unknown or revoked (send Authorization: Bearer <key>).',
  AO_KEY_READ_ONLY: 'A read-only API key may not start, cancel or replay runs.',
  AO_RATE_LIMITED: 'Too many requests for this API key (or address) in the window; retry after Retry-After seconds.',
  AO_TOO_MANY_ACTIVE_RUNS: 'The tenant already has as many active runs as it may; wait for some to finish (details: limit, active).',
  AO_TOO_MANY_STREAMS: 'Too many open WebSocket streams for this tenant or for the server (details: limit).',
  AO_IDEMPOTENCY_KEY_REUSED: 'The Idempotency-Key was already used for a different request body.',
  AO_SHUTTING_DOWN: 'The server is shutting down and takes no new runs; send it to another node.',
  // safety of tools: secrets and the HTTP tool
  AO_SECRET_KEY_MISSING:
    'A secret could not be stored: no key is configured (set AO_SECRET_KEY; required with Postgres). Secret parts of tool results are then dropped, reading [secret not kept: AO_SECRET_KEY_MISSING].',
  AO_SECRET_UNREADABLE: 'A stored secret could not be decrypted: AO_SECRET_KEY is not the key it was stored with, or the row was altered.',
  AO_SECRET_NOT_FOUND: 'A tool argument names a secret handle that this run (and the runs it replays) does not hold.',
  AO_SECRET_NOT_ALLOWED: 'A secret handle was passed in a tool argument that is not marked secret; secrets only go where a tool asks for one.',
  AO_HTTP_TOOL_ADDRESS_BLOCKED:
    'The http_request tool refused an address that is not public (loopback, private, link-local, unique-local, multicast, unspecified) and not allowed by AO_HTTP_TOOL_ALLOW.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error we throw on purpose. `code` is stable; `field` names the input at fault. */
export class AoError extends Error {
  /** Brand that survives duplicate package copies (checked by `isAoError`, not `instanceof`). */
  readonly aoError = true as const;
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** Whether trying the same thing again may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { field?: string; details?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AoError';
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** Errors in a graph definition. */
export class GraphError extends AoError {
  constructor(code: ErrorCode, message: string, opts: { field?: string; details?: Record<string, unknown> } = {}) {
    super(code, message, opts);
    this.name = 'GraphError';
  }
}

export function isAoError(e: unknown): e is AoError {
  return typeof e === 'object' && e !== null && (e as { aoError?: unknown }).aoError === true;
}

/** Dotted path of the first issue of a zod error, e.g. `input.intent` or `budget.tokens`. */
export function zodIssuePath(issue: { path: ReadonlyArray<PropertyKey> } | undefined, prefix?: string): string | undefined {
  if (!issue) return prefix;
  const parts = issue.path.map((p) => String(p));
  if (prefix) parts.unshift(prefix);
  return parts.length ? parts.join('.') : undefined;
}
