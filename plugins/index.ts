/**
 * The umbrella plugin: registers every gateway plugin in dependency order. Each is usable on its
 * own too (`plugins/sessions.ts`, `plugins/proxy.ts`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { invalid, isPlainObject } from '../lib/options.ts'
import type { UpstreamConfig } from '../lib/upstream/create.ts'
import mcpProxy, { type McpProxyOptions } from './proxy.ts'
import mcpSessions, { type McpSessionsOptions } from './sessions.ts'
import mcpHealth, { type McpHealthOptions } from './health.ts'
import mcpMetrics, { type McpMetricsOptions } from './metrics.ts'
import mcpTracing, { type McpTracingOptions } from './tracing.ts'
import mcpCore from './core.ts'
import mcpStreaming, { type McpStreamingOptions } from './streaming.ts'
import mcpStore, { type McpStoreOptions } from './store.ts'
import mcpInterceptors, { type McpInterceptorsOptions } from './interceptors.ts'
import mcpAuth, { type McpAuthOptions } from './auth.ts'
import mcpRateLimit, { type McpRateLimitOptions } from './rate-limit.ts'
import mcpWebSocket, { type McpWebSocketOptions } from './websocket.ts'

/** One of several upstreams, each on its own MCP endpoint. */
export type NamedUpstream = UpstreamConfig & {
  /** Names the upstream in logs, metrics, health checks and sessions. */
  name: string
  /**
   * Path of this upstream's MCP endpoint.
   * @default `/mcp/<name>`
   */
  path?: string
}

export interface McpGatewayOptions extends Omit<McpProxyOptions, 'upstream'> {
  /** The one upstream, on `path` (default `/mcp`). Give this or `upstreams`. */
  upstream?: McpProxyOptions['upstream']
  /**
   * Several upstreams, each of any kind, each on its own path. The other endpoint options
   * (`bodyLimit`, `allowedOrigins`, `heartbeat`, `route`, ...) apply to every one of them.
   */
  upstreams?: NamedUpstream[]
  /**
   * Where sessions and the event log live: `{ type: 'memory' }` (one process, no setup) or
   * `{ type: 'redis', url }` (shared by every instance on the same Redis and key prefix). A
   * `store` given to `sessions` or `streaming` takes precedence for that plugin.
   * @default { type: 'memory' }
   */
  store?: McpStoreOptions
  /**
   * The gateway-wide interceptor chain (`fastify.mcpInterceptors`): declarative `rules`, then
   * `interceptors`, and the error policy.
   */
  interceptors?: McpInterceptorsOptions
  /**
   * Inbound auth on the MCP endpoints: `{ apiKeys }` or `{ jwt }`, scopes, protected resource
   * metadata and per-tool rules. Off by default (see SECURITY.md).
   */
  auth?: McpAuthOptions
  /** Rate limits on the MCP endpoints (per principal, or per IP without auth). Off by default. */
  rateLimit?: McpRateLimitOptions
  /**
   * The WebSocket transport for clients at `<endpoint path>/ws` (subprotocol `mcp`): `true` or its
   * options. Off by default.
   */
  websocket?: McpWebSocketOptions | boolean
  /** Options of the sessions plugin. */
  sessions?: McpSessionsOptions
  /** Options of the streaming plugin (resumable streams); `false` relays streams without a log. */
  streaming?: McpStreamingOptions | false
  /** Options of the health plugin (`/healthz`, `/readyz`); `false` leaves it out. */
  health?: McpHealthOptions | false
  /** Options of the metrics plugin (`/metrics`); `false` leaves it out. */
  metrics?: McpMetricsOptions | false
  /**
   * OpenTelemetry spans per MCP exchange, to the tracer provider the application registered.
   * Off by default (`true` or options to turn it on).
   */
  tracing?: McpTracingOptions | boolean
}

async function mcpGateway (fastify: FastifyInstance, options: McpGatewayOptions): Promise<void> {
  if (!isPlainObject(options as unknown)) throw invalid('options', 'must be an object')
  const { store, interceptors, auth, rateLimit, websocket, sessions, streaming, health, metrics, tracing, ...proxy } = options
  if (sessions !== undefined && !isPlainObject(sessions)) throw invalid('sessions', 'must be an object')
  if (streaming !== undefined && streaming !== false && !isPlainObject(streaming)) throw invalid('streaming', 'must be an object or false')
  // Typed copies: the checks above narrow the originals to plain records.
  const sessionOptions: McpSessionsOptions = { ...options.sessions }
  const streamingOptions: McpStreamingOptions | false = options.streaming === false ? false : { ...options.streaming }
  // The Redis event log keeps what the streaming plugin's retention says, unless told otherwise.
  const retention = streamingOptions === false ? undefined : streamingOptions.retention
  const storeOptions: McpStoreOptions = store?.type === 'redis' && store.retention === undefined && retention !== undefined
    ? { ...store, retention }
    : store ?? { type: 'memory' }
  await fastify.register(mcpCore)
  await fastify.register(mcpStore, storeOptions)
  const stores = fastify.mcpStores
  await fastify.register(mcpSessions, { ...sessionOptions, store: sessionOptions.store ?? stores.sessions })
  if (streamingOptions !== false) await fastify.register(mcpStreaming, { ...streamingOptions, store: streamingOptions.store ?? stores.events })
  await fastify.register(mcpInterceptors, interceptors ?? {})
  if (auth !== undefined) await fastify.register(mcpAuth, auth)
  if (rateLimit !== undefined) await fastify.register(mcpRateLimit, rateLimit)
  if (auth === undefined) {
    // Loopback-only is the default; anything wider without auth is worth a line at startup.
    fastify.addHook('onListen', async () => {
      const exposed = fastify.addresses().flatMap((address) => typeof address === 'string' || isLoopback(address.address) ? [] : [address.address])
      if (exposed.length > 0) {
        fastify.log.warn({ addresses: exposed }, 'the MCP gateway listens beyond loopback with inbound auth off: anyone who can reach it can use its upstreams (see SECURITY.md)')
      }
    })
  }
  const { upstreams, upstream, ...endpoint } = proxy
  if (upstreams === undefined) {
    await fastify.register(mcpProxy, { ...endpoint, upstream: upstream as McpProxyOptions['upstream'] })
  } else {
    if (upstream !== undefined) throw invalid('upstreams', 'give "upstream" or "upstreams", not both')
    if (!Array.isArray(upstreams) || upstreams.length === 0) throw invalid('upstreams', 'must be a non-empty array of upstreams, each with a name')
    if (endpoint.path !== undefined) throw invalid('path', 'with "upstreams", give each upstream its own path')
    const paths = new Set<string>()
    for (const [index, entry] of upstreams.entries()) {
      if (!isPlainObject(entry as unknown) || typeof entry.name !== 'string' || entry.name.length === 0) throw invalid(`upstreams[${index}].name`, 'is required (a non-empty string)')
      const { path = `/mcp/${entry.name}`, ...options } = entry
      if (paths.has(path)) throw invalid(`upstreams[${index}].path`, `"${path}" is already taken by another upstream`)
      paths.add(path)
      await fastify.register(mcpProxy, { ...endpoint, upstream: options as UpstreamConfig, path })
    }
  }
  if (websocket !== undefined && websocket !== false) await fastify.register(mcpWebSocket, websocket === true ? {} : websocket)
  if (health !== false) await fastify.register(mcpHealth, health ?? {})
  if (metrics !== false) await fastify.register(mcpMetrics, metrics ?? {})
  if (tracing !== undefined && tracing !== false) await fastify.register(mcpTracing, tracing === true ? {} : tracing)
}

function isLoopback (address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost' || address.startsWith('::ffff:127.')
}

export default fp(mcpGateway, { name: 'mcp-gateway', fastify: '5.x' })
