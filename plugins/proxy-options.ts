/**
 * The proxy plugin's options: their types, defaults and the check that runs once at register.
 */
import type { onSendAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import type { Interceptor } from '../lib/interceptors/chain.ts'
import { HEARTBEAT_DEFAULTS, type HeartbeatOptions } from '../lib/heartbeat.ts'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger, optionalString } from '../lib/options.ts'
import type { OriginPolicy } from '../lib/origin.ts'
import type { UpstreamConfig, UpstreamOptions } from '../lib/upstream/create.ts'
import { checkTimeouts, checkUpstreamOptions } from '../lib/upstream/options.ts'
import type { CheckedTimeouts } from '../lib/deadline.ts'

export interface McpProxyOptions {
  /**
   * The upstream: a Streamable HTTP endpoint URL, or options with a `kind`: `streamable-http`
   * (the default; `url`), `stdio` (`command`, `args`, `env`, `cwd`) or `sse` (a legacy
   * 2024-11-05 HTTP+SSE server; `url` of its SSE endpoint). See the README's Upstreams section.
   */
  upstream: string | UpstreamConfig
  /**
   * Path of the MCP endpoint on this server.
   * @default '/mcp'
   */
  path?: string
  /**
   * Largest POST body accepted; larger ones get 413 with a JSON-RPC error.
   * @default 4 MiB
   */
  bodyLimit?: number
  /**
   * Largest JSON response accepted from the upstream (SSE streams are never buffered).
   * @default 64 MiB
   */
  maxResponseBytes?: number
  /**
   * Browser origins allowed to call the endpoint: exact origins, `"loopback"`, `"*"`, or a
   * function. A request whose `Origin` is not allowed gets 403 (DNS rebinding protection).
   * @default loopback origins only
   */
  allowedOrigins?: OriginPolicy
  /**
   * Most POSTs one session may have in flight at once (per gateway instance); past it, 429 with
   * `Retry-After` and JSON-RPC -32069. One client cannot tie up the upstream for everyone.
   * @default 64
   */
  maxInFlightPerSession?: number
  /** Pings to the upstream sessions of idle gateway sessions (see README, Session lifecycle). */
  heartbeat?: Partial<HeartbeatOptions>
  /**
   * Route-level additions to the MCP endpoint: interceptors of this route only (kept in
   * `config.mcp.interceptors`, after the gateway-wide ones), and Fastify route hooks, which run
   * after session resolution and see `request.mcpSession` and `request.mcpMessages` (assign a new
   * array to change what is sent; `reply.send()` answers early).
   */
  route?: {
    interceptors?: Interceptor[]
    preHandler?: preHandlerAsyncHookHandler | preHandlerAsyncHookHandler[]
    onSend?: onSendAsyncHookHandler | onSendAsyncHookHandler[]
  }
}

export const PROXY_DEFAULTS = {
  path: '/mcp',
  bodyLimit: 4 * 1024 * 1024,
  maxResponseBytes: 64 * 1024 * 1024,
  maxInFlightPerSession: 64,
  upstreamName: 'default'
} as const

export interface CheckedProxyOptions {
  upstream: UpstreamOptions
  timeouts: CheckedTimeouts
  path: string
  bodyLimit: number
  maxResponseBytes: number
  maxInFlightPerSession: number
  allowedOrigins: OriginPolicy | undefined
  heartbeat: HeartbeatOptions
  route: NonNullable<McpProxyOptions['route']>
}

export function checkProxyOptions (options: McpProxyOptions): CheckedProxyOptions {
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  // With the umbrella plugin, a top-level key no plugin knows ends up here: refused either way.
  knownKeys('', options, [...REGISTER_OPTION_KEYS, 'upstream', 'path', 'bodyLimit', 'maxResponseBytes', 'allowedOrigins', 'maxInFlightPerSession', 'heartbeat', 'route'])
  const path = optionalString('path', options.path, PROXY_DEFAULTS.path)
  if (!path.startsWith('/')) throw invalid('path', 'must start with "/"')
  const allowedOrigins = options.allowedOrigins
  if (allowedOrigins !== undefined && typeof allowedOrigins !== 'function' &&
    !(Array.isArray(allowedOrigins) && allowedOrigins.every((entry) => typeof entry === 'string'))) {
    throw invalid('allowedOrigins', 'must be an array of origin strings or a function')
  }
  const heartbeat = options.heartbeat ?? {}
  if (!isPlainObject(heartbeat)) throw invalid('heartbeat', 'must be an object')
  knownKeys('heartbeat', heartbeat, ['intervalMs', 'maxFailures'])
  const route = options.route ?? {}
  if (!isPlainObject(route)) throw invalid('route', 'must be an object')
  knownKeys('route', route, ['interceptors', 'preHandler', 'onSend'])
  if (route.interceptors !== undefined && !Array.isArray(route.interceptors)) throw invalid('route.interceptors', 'must be an array of interceptors')
  return {
    route: route as NonNullable<McpProxyOptions['route']>,
    heartbeat: {
      intervalMs: optionalInteger('heartbeat.intervalMs', heartbeat.intervalMs, 0, HEARTBEAT_DEFAULTS.intervalMs),
      maxFailures: optionalInteger('heartbeat.maxFailures', heartbeat.maxFailures, 1, HEARTBEAT_DEFAULTS.maxFailures)
    },
    upstream: checkUpstreamOptions('upstream', options.upstream, PROXY_DEFAULTS.upstreamName),
    timeouts: checkTimeouts('upstream', options.upstream),
    path,
    bodyLimit: optionalInteger('bodyLimit', options.bodyLimit, 1, PROXY_DEFAULTS.bodyLimit),
    maxResponseBytes: optionalInteger('maxResponseBytes', options.maxResponseBytes, 1, PROXY_DEFAULTS.maxResponseBytes),
    maxInFlightPerSession: optionalInteger('maxInFlightPerSession', options.maxInFlightPerSession, 1, PROXY_DEFAULTS.maxInFlightPerSession),
    allowedOrigins
  }
}
