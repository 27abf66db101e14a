import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERROR_CODES, isAoError } from '@ao/graphs';
import type { ErrorCode } from '@ao/graphs';

/**
 * The one table from error code to HTTP status. Typed as a record over every code, so a code
 * added to the catalogue without a status does not compile (and errors.test.ts checks it too).
 */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  AO_GRAPH_INVALID_NAME: 400,
  AO_GRAPH_DUPLICATE_NODE: 400,
  AO_GRAPH_RESERVED_NODE_ID: 400,
  AO_GRAPH_UNKNOWN_AGENT: 400,
  AO_GRAPH_INVALID_NODE_OPTIONS: 400,
  AO_GRAPH_UNKNOWN_NODE: 400,
  AO_GRAPH_DUPLICATE_EDGE: 400,
  AO_GRAPH_NO_ENTRY: 400,
  AO_GRAPH_UNREACHABLE_NODE: 400,
  AO_GRAPH_UNBOUNDED_CYCLE: 400,
  AO_GRAPH_INVALID_BUDGET: 400,
  AO_GRAPH_UNKNOWN_TOOL: 400,
  AO_GRAPH_EMPTY: 400,
  AO_GRAPH_ALREADY_REGISTERED: 409,
  AO_BAD_JSON: 400,
  AO_VALIDATION: 400,
  // A body naming an unknown graph is bad input (400); GET /graphs/:name maps it to 404 itself.
  AO_GRAPH_NOT_FOUND: 400,
  AO_RUN_NOT_FOUND: 404,
  AO_RUN_EXISTS: 409,
  AO_RUN_FILE_INVALID: 400,
  AO_RUN_NOT_FINISHED: 409,
  AO_RUN_ID_AMBIGUOUS: 409,
  AO_ROUTE_NOT_FOUND: 404,
  AO_PAYLOAD_TOO_LARGE: 413,
  AO_UNSUPPORTED_MEDIA_TYPE: 415,
  AO_INTERNAL: 500,
  AO_UPGRADE_REQUIRED: 426,
  AO_STREAM_CURSOR_AHEAD: 400,
  // Sent in a stream frame before the server closes the socket, never as an HTTP answer.
  AO_STREAM_BEHIND: 429,
  AO_ENVELOPE_INVALID: 400,
  AO_STORE_CORRUPT: 500,
  AO_TOOL_NOT_FOUND: 400,
  AO_TOOL_ARGS_INVALID: 400,
  AO_TOOL_FAILED: 502,
  AO_TOOL_NOT_ALLOWED: 403,
  AO_LLM_FAILED: 502,
  AO_LLM_OUTPUT_INVALID: 502,
  AO_NODE_TIMEOUT: 504,
  AO_NODE_FAILED: 500,
  AO_NODE_CANCELLED: 409,
  AO_EDGE_PREDICATE_FAILED: 500,
  AO_RUN_STRANDED: 500,
  AO_BUDGET_EXCEEDED: 409,
  AO_BUDGET_TOOL_CAP: 409,
  AO_BUDGET_UNAVAILABLE: 503,
  AO_BUDGET_OVERRIDE_LOOSENS: 400,
  AO_EFFECT_UNKNOWN_OUTCOME: 409,
  AO_GRAPH_VERSION_CHANGED: 409,
  AO_RUN_NOT_ACTIVE: 409,
  AO_RUN_NOT_WAITING: 409,
  AO_WAIT_TIMED_OUT: 409,
  AO_CHECKPOINT_NOT_FOUND: 404,
  AO_RUN_CANCELLED: 409,
  AO_RUN_INTERRUPTED: 503,
  AO_CONFIG_INVALID: 500,
  AO_LEASE_LOST: 409,
  AO_BUS_NO_RESPONDER: 503,
  AO_BUS_UNAVAILABLE: 503,
  AO_NODE_ID_IN_USE: 409,
  AO_DATA_DIR_LOCKED: 409,
  AO_TASK_STOPPED: 409,
  AO_REPLAY_STEP_OUT_OF_RANGE: 400,
  AO_REPLAY_INCOMPATIBLE: 400,
  AO_REPLAY_DIVERGED: 409,
  AO_REPLAY_UNSAFE_TOOL: 409,
  AO_LLM_RATE_LIMITED: 429,
  AO_LLM_TIMEOUT: 504,
  AO_TOOL_TIMEOUT: 504,
  AO_MCP_SERVER_FAILED: 502,
  AO_SUPERVISOR_ROUTE_INVALID: 400,
  AO_UNAUTHORIZED: 401,
  AO_KEY_READ_ONLY: 403,
  AO_RATE_LIMITED: 429,
  AO_TOO_MANY_ACTIVE_RUNS: 429,
  AO_TOO_MANY_STREAMS: 429,
  AO_IDEMPOTENCY_KEY_REUSED: 422,
  AO_SHUTTING_DOWN: 503,
  AO_SECRET_KEY_MISSING: 500,
  AO_SECRET_UNREADABLE: 500,
  AO_SECRET_NOT_FOUND: 400,
  AO_SECRET_NOT_ALLOWED: 403,
  AO_HTTP_TOOL_ADDRESS_BLOCKED: 403,
};

export interface ErrorBody {
  /** `candidates`: the run ids an ambiguous id prefix matches (AO_RUN_ID_AMBIGUOUS). */
  error: { code: ErrorCode; message: string; field?: string; candidates?: string[] };
}

export const body = (code: ErrorCode, message: string, field?: string, candidates?: string[]): ErrorBody => ({
  error: { code, message, ...(field ? { field } : {}), ...(candidates ? { candidates } : {}) },
});

/** `/body/budget/tokens` -> `budget.tokens` (the part of the request named by the context). */
function fieldOf(instancePath: string | undefined, context: string | undefined): string | undefined {
  const parts = (instancePath ?? '').split('/').filter(Boolean);
  if (context && context !== 'body') parts.unshift(context === 'querystring' ? 'query' : context);
  return parts.length ? parts.join('.') : undefined;
}

/** Map anything a route throws to a status and a stable code; only unexpected errors are 500s. */
export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const v = err.validation[0];
    const field = fieldOf(v?.instancePath, err.validationContext);
    const missing = (v?.params as { issue?: { code?: string; input?: unknown } } | undefined)?.issue;
    const what = missing?.code === 'invalid_type' && missing.input === undefined ? 'is required' : (v?.message ?? 'is invalid');
    void reply.status(400).send(body('AO_VALIDATION', `${field ?? err.validationContext ?? 'request'}: ${what}`, field));
    return;
  }
  if (isAoError(err)) {
    const candidates = err.details?.candidates;
    void reply
      .status(HTTP_STATUS[err.code] ?? 500)
      .send(body(err.code, err.message, err.field, Array.isArray(candidates) ? candidates.map(String) : undefined));
    return;
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      void reply.status(400).send(body('AO_BAD_JSON', `request body is not valid JSON: ${err.message}`, 'body'));
      return;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      void reply.status(413).send(body('AO_PAYLOAD_TOO_LARGE', err.message));
      return;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      void reply.status(415).send(body('AO_UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json'));
      return;
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    void reply.status(400).send(body('AO_BAD_JSON', `request body is not valid JSON: ${err.message}`, 'body'));
    return;
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    void reply.status(err.statusCode).send(body('AO_VALIDATION', err.message));
    return;
  }
  req.log.error({ err }, 'unhandled error');
  void reply.status(500).send(body('AO_INTERNAL', ERROR_CODES.AO_INTERNAL));
}
