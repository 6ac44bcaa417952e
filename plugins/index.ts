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

export interface McpGatewayOptions extends McpProxyOptions {
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
  const { sessions, streaming, health, metrics, tracing, ...proxy } = options
  if (sessions !== undefined && !isPlainObject(sessions)) throw invalid('sessions', 'must be an object')
  if (streaming !== undefined && streaming !== false && !isPlainObject(streaming)) throw invalid('streaming', 'must be an object or false')
  await fastify.register(mcpSessions, sessions ?? {})
  if (streaming !== false) await fastify.register(mcpStreaming, streaming ?? {})
  await fastify.register(mcpProxy, proxy)
  await fastify.register(mcpShutdown)
  if (health !== false) await fastify.register(mcpHealth, health ?? {})
  if (metrics !== false) await fastify.register(mcpMetrics, metrics ?? {})
  if (tracing !== undefined && tracing !== false) await fastify.register(mcpTracing, tracing === true ? {} : tracing)
}

export default fp(mcpGateway, { name: 'mcp-gateway', fastify: '5.x' })
