/**
 * The gateway's one table of coded errors. Each code maps to an HTTP status and a JSON-RPC error
 * code; the proxy's error handler turns any of them into a JSON-RPC error body.
 *
 * JSON-RPC codes: the standard ones where the JSON-RPC spec has one, -32000/-32001 where the MCP
 * SDK already uses them for the same condition (clients recognise them), and -32050..-32089 for
 * conditions only a gateway has.
 */
import createError from '@fastify/error'
import { INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, errorResponse, type JsonRpcError, type JsonRpcId } from './jsonrpc.ts'

interface ErrorSpec {
  code: string
  message: string
  status: number
  rpcCode: number
}

const specs: ErrorSpec[] = []

function define (code: string, message: string, status: number, rpcCode: number) {
  specs.push({ code, message, status, rpcCode })
  return createError(code, message, status)
}

export const GatewayErrors = {
  PARSE_ERROR: define('MCP_GW_PARSE_ERROR', '%s', 400, PARSE_ERROR),
  INVALID_REQUEST: define('MCP_GW_INVALID_REQUEST', '%s', 400, INVALID_REQUEST),
  BATCH_NOT_SUPPORTED: define('MCP_GW_BATCH_NOT_SUPPORTED', 'Invalid Request: JSON-RPC batches are not supported by protocol version %s', 400, INVALID_REQUEST),
  BAD_PROTOCOL_VERSION: define('MCP_GW_BAD_PROTOCOL_VERSION', 'Bad Request: unsupported MCP-Protocol-Version %s for this session', 400, -32000),
  HEADER_MISMATCH: define('MCP_GW_HEADER_MISMATCH', 'Header mismatch: %s', 400, -32020),
  SESSION_REQUIRED: define('MCP_GW_SESSION_REQUIRED', 'Bad Request: Mcp-Session-Id header is required', 400, -32000),
  ALREADY_INITIALIZED: define('MCP_GW_ALREADY_INITIALIZED', 'Invalid Request: session is already initialized', 400, INVALID_REQUEST),
  TOOL_NAME_TOO_LONG: define('MCP_GW_TOOL_NAME_TOO_LONG', 'Invalid params: tool name is longer than %s characters', 400, -32602),
  TOO_MANY_SESSIONS: define('MCP_GW_TOO_MANY_SESSIONS', 'Service Unavailable: the gateway holds its maximum of %s sessions; retry later', 503, -32053),
  STORE_UNAVAILABLE: define('MCP_GW_STORE_UNAVAILABLE', 'Service Unavailable: the gateway\'s %s store cannot be reached; retry later', 503, -32054),
  UNAUTHORIZED: define('MCP_GW_UNAUTHORIZED', 'Unauthorized: %s', 401, -32057),
  INSUFFICIENT_SCOPE: define('MCP_GW_INSUFFICIENT_SCOPE', 'Forbidden: this needs the scope %s', 403, -32058),
  RATE_LIMITED: define('MCP_GW_RATE_LIMITED', 'Too Many Requests: %s; retry after %s s', 429, -32059),
  TOO_MANY_IN_FLIGHT: define('MCP_GW_TOO_MANY_IN_FLIGHT', 'Too Many Requests: this session already has %s requests in flight', 429, -32069),
  SESSION_NOT_FOUND: define('MCP_GW_SESSION_NOT_FOUND', 'Session not found', 404, -32001),
  BLOCKED: define('MCP_GW_BLOCKED', 'Blocked by the gateway: %s', 403, -32055),
  FORBIDDEN_ORIGIN: define('MCP_GW_FORBIDDEN_ORIGIN', 'Forbidden: Origin %s is not allowed', 403, -32050),
  BODY_TOO_LARGE: define('MCP_GW_BODY_TOO_LARGE', 'Payload Too Large: the request body is over the gateway\'s bodyLimit of %s bytes', 413, -32051),
  UNSUPPORTED_MEDIA_TYPE: define('MCP_GW_UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: POST bodies must be application/json', 415, -32052),
  UPSTREAM_UNAVAILABLE: define('MCP_GW_UPSTREAM_UNAVAILABLE', 'Upstream %s is unavailable', 502, -32060),
  UPSTREAM_TIMEOUT: define('MCP_GW_UPSTREAM_TIMEOUT', 'Upstream %s did not answer in time', 504, -32061),
  UPSTREAM_BAD_RESPONSE: define('MCP_GW_UPSTREAM_BAD_RESPONSE', 'Upstream %s sent an invalid response: %s', 502, -32062),
  UPSTREAM_ERROR: define('MCP_GW_UPSTREAM_ERROR', 'Upstream %s failed with HTTP %s', 502, -32063),
  /** The upstream forgot the session (restart, expiry): the exchange ends ours, the client hears SESSION_NOT_FOUND. */
  UPSTREAM_SESSION_GONE: define('MCP_GW_UPSTREAM_SESSION_GONE', 'Session not found', 404, -32001),
  /** An upstream's own 4xx, carried to the client as it is (`reply`); the status here is a fallback. */
  UPSTREAM_REFUSED: define('MCP_GW_UPSTREAM_REFUSED', 'Upstream %s refused the request with HTTP %s', 400, -32000),
  STREAM_CONFLICT: define('MCP_GW_STREAM_CONFLICT', 'Conflict: only one SSE stream is allowed per session', 409, -32000),
  UPSTREAM_NEEDS_SESSION: define('MCP_GW_UPSTREAM_NEEDS_SESSION', 'Bad Request: upstream %s (%s) serves sessions only: initialize first', 400, -32000),
  UPSTREAM_AUTH: define('MCP_GW_UPSTREAM_AUTH', 'Upstream %s rejected the gateway\'s credentials (HTTP %s)', 502, -32064),
  /** The gateway could not get a token for the upstream (its token endpoint refused, or is away). */
  UPSTREAM_TOKEN: define('MCP_GW_UPSTREAM_TOKEN', 'The gateway could not get a token for upstream %s: %s', 502, -32078),
  /**
   * Per-user OAuth: the user has not authorized the gateway at the upstream yet. MCP's own
   * URLElicitationRequired code, so clients know to open the URL in `data.elicitations`.
   */
  /** The OAuth callback (or the sign-in page) names no sign-in in progress. Shown on the page, not to an MCP client. */
  SIGN_IN_FAILED: define('MCP_GW_SIGN_IN_FAILED', 'Sign-in failed: %s', 400, -32079),
  CONSENT_REQUIRED: define('MCP_GW_CONSENT_REQUIRED', 'Upstream %s needs your authorization: open the URL given to sign in, then send the request again', 403, -32042),
  UPSTREAM_FULL: define('MCP_GW_UPSTREAM_FULL', 'Service Unavailable: upstream %s runs its maximum of %s connections or processes; retry later', 503, -32056),
  UPSTREAM_EXITED: define('MCP_GW_UPSTREAM_EXITED', 'Upstream %s is gone: %s', 502, -32068),
  UPSTREAM_BACKLOG: define('MCP_GW_UPSTREAM_BACKLOG', 'Service Unavailable: upstream %s is not reading its input (%s bytes waiting); retry later', 503, -32070),
  /** A tool's result over its `resultLimits` (with `action: "error"`, or when cutting text cannot make it fit). */
  RESULT_TOO_LARGE: define('MCP_GW_RESULT_TOO_LARGE', 'The result of tool %s is %s bytes, over its limit of %s bytes', 502, -32080),
  UPSTREAM_STREAM_ENDED: define('MCP_GW_UPSTREAM_STREAM_ENDED', 'Upstream %s ended the stream before answering this request', 502, -32065),
  UNKNOWN_EVENT_ID: define('MCP_GW_UNKNOWN_EVENT_ID', 'Last-Event-ID %s does not name a stream of this session', 400, -32066),
  EVENTS_TRIMMED: define('MCP_GW_EVENTS_TRIMMED', 'Events after Last-Event-ID %s are no longer retained', 410, -32067),
  METHOD_NOT_ALLOWED: define('MCP_GW_METHOD_NOT_ALLOWED', 'Method Not Allowed: the MCP endpoint takes POST, GET and DELETE', 405, -32000),
  MEMBER_DOWN: define('MCP_GW_MEMBER_DOWN', 'Upstream %s of virtual server %s is unavailable: %s', 502, -32071),
  MEMBER_SESSION_REOPENED: define('MCP_GW_MEMBER_SESSION_REOPENED', 'Upstream %s of virtual server %s had forgotten its session; a new one is open and the request was not made: send it again', 502, -32072),
  NO_MEMBER_OPEN: define('MCP_GW_NO_MEMBER_OPEN', 'Service Unavailable: no upstream of virtual server %s could be opened (%s)', 503, -32073),
  VIRTUAL_UNKNOWN: define('MCP_GW_VIRTUAL_UNKNOWN', 'Invalid params: virtual server %s has no %s %s', 400, INVALID_PARAMS),
  VIRTUAL_NOT_ROUTED: define('MCP_GW_VIRTUAL_NOT_ROUTED', 'Method not found: virtual server %s does not route %s', 400, METHOD_NOT_FOUND),
  INVALID_CURSOR: define('MCP_GW_INVALID_CURSOR', 'Invalid params: this cursor is not one the gateway gave for %s', 400, INVALID_PARAMS),
  /** The admin API (not JSON-RPC: its bodies are `{ error: { code, message } }`). */
  ADMIN_NOT_FOUND: define('MCP_GW_ADMIN_NOT_FOUND', 'Not found: %s', 404, -32074),
  ADMIN_FORBIDDEN: define('MCP_GW_ADMIN_FORBIDDEN', 'Forbidden: %s', 403, -32075),
  ADMIN_CONFLICT: define('MCP_GW_ADMIN_CONFLICT', 'Conflict: %s', 409, -32076),
  ADMIN_BUSY: define('MCP_GW_ADMIN_BUSY', 'Service Unavailable: %s', 503, -32077),
  INVALID_OPTION: define('MCP_GW_INVALID_OPTION', 'Invalid option "%s": %s', 500, INTERNAL_ERROR)
} as const

export type GatewayErrorName = keyof typeof GatewayErrors

const byCode = new Map(specs.map((spec) => [spec.code, spec]))

/** The documented table, for the README and for tests that check every code is reachable. */
export const ERROR_TABLE: readonly Readonly<ErrorSpec>[] = specs

interface ErrorLike {
  code?: string
  statusCode?: number
  message: string
  /** What the client may act on, beyond the message (a consent prompt's URL). */
  data?: unknown
}

/**
 * Maps any error reaching the MCP endpoint to an HTTP status and a JSON-RPC error body: the
 * gateway's own codes from the table, Fastify's body-parsing errors by their status, and anything
 * else as a 500 internal error that does not leak its message.
 */
export function toJsonRpcError (err: ErrorLike, id: JsonRpcId | null = null): { status: number, body: JsonRpcError } {
  const spec = err.code === undefined ? undefined : byCode.get(err.code)
  if (spec !== undefined) {
    return { status: spec.status, body: errorResponse(id, spec.rpcCode, err.message, err.data) }
  }
  const status = err.statusCode ?? 500
  if (status === 413) return toJsonRpcError(new GatewayErrors.BODY_TOO_LARGE('the configured limit'), id)
  if (status === 415) return toJsonRpcError(new GatewayErrors.UNSUPPORTED_MEDIA_TYPE(), id)
  if (status >= 400 && status < 500) {
    return { status, body: errorResponse(id, INVALID_REQUEST, err.message) }
  }
  return { status: 500, body: errorResponse(id, INTERNAL_ERROR, 'Internal error') }
}
