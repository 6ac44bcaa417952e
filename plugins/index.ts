/**
 * The umbrella plugin: registers every gateway plugin in dependency order. Each is usable on its
 * own too (`plugins/sessions.ts`, `plugins/proxy.ts`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { invalid, isPlainObject } from '../lib/options.ts'
import mcpProxy, { type McpProxyOptions } from './proxy.ts'
import mcpSessions, { type McpSessionsOptions } from './sessions.ts'
import mcpHealth, { type McpHealthOptions } from './health.ts'
import mcpMetrics, { type McpMetricsOptions } from './metrics.ts'
import mcpTracing, { type McpTracingOptions } from './tracing.ts'
import mcpShutdown from './shutdown.ts'
import mcpStreaming, { type McpStreamingOptions } from './streaming.ts'
import mcpStore, { type McpStoreOptions } from './store.ts'
import mcpInterceptors, { type McpInterceptorsOptions } from './interceptors.ts'

export interface McpGatewayOptions extends McpProxyOptions {
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
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  const { store, interceptors, sessions, streaming, health, metrics, tracing, ...proxy } = options
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
  await fastify.register(mcpStore, storeOptions)
  const stores = fastify.mcpStores
  await fastify.register(mcpSessions, { ...sessionOptions, store: sessionOptions.store ?? stores.sessions })
  if (streamingOptions !== false) await fastify.register(mcpStreaming, { ...streamingOptions, store: streamingOptions.store ?? stores.events })
  await fastify.register(mcpInterceptors, interceptors ?? {})
  await fastify.register(mcpProxy, proxy)
  await fastify.register(mcpShutdown)
  if (health !== false) await fastify.register(mcpHealth, health ?? {})
  if (metrics !== false) await fastify.register(mcpMetrics, metrics ?? {})
  if (tracing !== undefined && tracing !== false) await fastify.register(mcpTracing, tracing === true ? {} : tracing)
}

export default fp(mcpGateway, { name: 'mcp-gateway', fastify: '5.x' })
