/**
 * The proxy plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import type { onSendAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import type { Interceptor } from '../lib/interceptors/chain.ts'
import type { ResultLimits } from '../lib/interceptors/result-limit.ts'
import { HEARTBEAT_DEFAULTS, type HeartbeatOptions } from '../lib/heartbeat.ts'
import { codeOnly, codeValue, int, parseOptions, pluginSchema, reportAs, routePath, z, type SectionInput } from '../lib/options.ts'
import type { OriginPolicy } from '../lib/origin.ts'
import type { UpstreamOptions } from '../lib/upstream/create.ts'
import { timeoutsOf, upstreamOptionsOf } from '../lib/upstream/options.ts'
import { endpointUpstreamSchema } from '../lib/upstream/endpoint-options.ts'
import type { CheckedTimeouts } from '../lib/deadline.ts'

export const PROXY_DEFAULTS = {
  path: '/mcp',
  bodyLimit: 4 * 1024 * 1024,
  maxResponseBytes: 64 * 1024 * 1024,
  maxInFlightPerSession: 64,
  upstreamName: 'default'
} as const

const isFunction = (value: unknown): boolean => typeof value === 'function'
const hooks = <T>() => codeValue<T | T[]>((value) =>
  isFunction(value) || (Array.isArray(value) && value.every(isFunction)) ? undefined : 'must be a function or an array of functions')

/** The endpoint's options, shared by the umbrella plugin (every endpoint takes them). */
export const endpointShape = {
  /**
   * Path of the MCP endpoint on this server.
   * @default '/mcp'
   */
  path: routePath().default(PROXY_DEFAULTS.path).meta({ description: 'Path of the MCP endpoint (with upstream).' }),
  /**
   * Largest POST body accepted; larger ones get 413 with a JSON-RPC error.
   * @default 4 MiB
   */
  bodyLimit: int(1).default(PROXY_DEFAULTS.bodyLimit).meta({ description: 'Largest POST body (and WebSocket frame).' }),
  /**
   * Largest JSON response accepted from the upstream (SSE streams are never buffered).
   * @default 64 MiB
   */
  maxResponseBytes: int(1).default(PROXY_DEFAULTS.maxResponseBytes).meta({ description: 'Largest JSON response accepted from an upstream.' }),
  /**
   * Browser origins allowed to call the endpoint: exact origins, `"loopback"`, `"*"`, or a
   * function. A request whose `Origin` is not allowed gets 403 (DNS rebinding protection).
   * @default loopback origins only
   */
  allowedOrigins: reportAs(z.union([
    z.array(z.string()),
    codeValue<(origin: string) => boolean>((value) => isFunction(value) ? undefined : 'must be a function')
  ]), 'must be an array of origin strings or a function').optional()
    .meta({ description: 'Browser origins allowed: exact origins, "loopback", "*". Default: loopback origins.' }),
  /**
   * Most POSTs one session may have in flight at once (per gateway instance); past it, 429 with
   * `Retry-After` and JSON-RPC -32069. One client cannot tie up the upstream for everyone.
   * @default 64
   */
  maxInFlightPerSession: int(1).default(PROXY_DEFAULTS.maxInFlightPerSession).meta({ description: 'POSTs one session may have in flight at once.' }),
  /**
   * Size limits of `tools/call` results on their way to the client, in bytes of the result's
   * JSON: `maxBytes` for every tool, `tools` by name. Over its limit a result's text content is
   * cut to fit with a marker (`action: "truncate"`), or the call answers MCP_GW_RESULT_TOO_LARGE
   * (`"error"`). Counted in `mcp_gateway_limited_total{limit="result"}`.
   * @default no limits
   */
  resultLimits: z.strictObject({
    maxBytes: int(64).optional().meta({ description: 'Every tool\'s result limit, in bytes of its JSON.' }),
    tools: z.record(z.string(), int(64), { error: 'must be an object of tool names to byte counts (64 or more)' }).optional().meta({ description: 'Result limits of particular tools, by name.' }),
    action: z.enum(['truncate', 'error'], { error: 'must be "truncate" or "error"' }).default('truncate').meta({ description: 'truncate: cut text content to fit, with a marker; error: answer MCP_GW_RESULT_TOO_LARGE.' })
  }).optional().meta({ description: 'Size limits of tools/call results (bytes of JSON), cut to fit or refused.' }),
  /** Pings to the upstream sessions of idle gateway sessions (see README, Session lifecycle). */
  heartbeat: z.strictObject({
    /**
     * Sessions idle this long are pinged, at most once per interval. 0 turns the heartbeat off.
     * @default 120000
     */
    intervalMs: int(0).default(HEARTBEAT_DEFAULTS.intervalMs).meta({ description: 'Idle sessions get a ping to their upstream session this often; 0: off.' }),
    /**
     * Failed pings in a row that end a session (a 404 ends it at once).
     * @default 3
     */
    maxFailures: int(1).default(HEARTBEAT_DEFAULTS.maxFailures).meta({ description: 'Failed pings in a row that end the session.' })
  }).prefault({}),
  /**
   * Route-level additions to the MCP endpoint: interceptors of this route only (kept in
   * `config.mcp.interceptors`, after the gateway-wide ones), and Fastify route hooks, which run
   * after session resolution and see `request.mcpSession` and `request.mcpMessages` (assign a new
   * array to change what is sent; `reply.send()` answers early). Code only.
   */
  route: codeOnly(z.strictObject({
    interceptors: reportAs(z.array(codeValue<Interceptor>((value) => typeof value === 'object' && value !== null ? undefined : 'must be an interceptor')), 'must be an array of interceptors').optional(),
    preHandler: hooks<preHandlerAsyncHookHandler>().optional(),
    onSend: hooks<onSendAsyncHookHandler>().optional()
  })).prefault({})
}

export const proxyShape = {
  /**
   * The upstream: a Streamable HTTP endpoint URL, or options with a `kind`: `streamable-http`
   * (the default; `url`), `stdio` (`command`, `args`, `env`, `cwd`) or `sse` (a legacy
   * 2024-11-05 HTTP+SSE server; `url` of its SSE endpoint) or `virtual` (several upstreams behind
   * this one endpoint, `members`). See the README's Upstreams and Federation sections.
   */
  upstream: endpointUpstreamSchema,
  ...endpointShape
}

export const proxySchema = pluginSchema(proxyShape)

export type McpProxyOptions = SectionInput<typeof proxyShape>

export interface CheckedProxyOptions {
  upstream: UpstreamOptions
  timeouts: CheckedTimeouts
  path: string
  bodyLimit: number
  maxResponseBytes: number
  maxInFlightPerSession: number
  allowedOrigins: OriginPolicy | undefined
  heartbeat: HeartbeatOptions
  resultLimits: ResultLimits | undefined
  route: NonNullable<McpProxyOptions['route']>
}

export function checkProxyOptions (options: McpProxyOptions): CheckedProxyOptions {
  // With the umbrella plugin, a top-level key no plugin knows ends up here: refused either way.
  const checked = parseOptions(proxySchema, '', options)
  const upstream = upstreamOptionsOf(checked.upstream, PROXY_DEFAULTS.upstreamName)
  return {
    route: checked.route,
    heartbeat: checked.heartbeat,
    resultLimits: checked.resultLimits,
    upstream,
    timeouts: timeoutsOf(upstream),
    path: checked.path,
    bodyLimit: checked.bodyLimit,
    maxResponseBytes: checked.maxResponseBytes,
    maxInFlightPerSession: checked.maxInFlightPerSession,
    allowedOrigins: checked.allowedOrigins
  }
}
