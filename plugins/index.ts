/**
 * The umbrella plugin: registers every gateway plugin in dependency order. Each is usable on its
 * own too (`plugins/sessions.ts`, `plugins/proxy.ts`).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { invalid, isPlainObject } from '../lib/options.ts'
import mcpProxy, { type McpProxyOptions } from './proxy.ts'
import mcpSessions, { type McpSessionsOptions } from './sessions.ts'
import mcpShutdown from './shutdown.ts'

export interface McpGatewayOptions extends McpProxyOptions {
  /** Options of the sessions plugin. */
  sessions?: McpSessionsOptions
}

async function mcpGateway (fastify: FastifyInstance, options: McpGatewayOptions): Promise<void> {
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  const { sessions, ...proxy } = options
  if (sessions !== undefined && !isPlainObject(sessions)) throw invalid('sessions', 'must be an object')
  await fastify.register(mcpSessions, sessions ?? {})
  await fastify.register(mcpProxy, proxy)
  await fastify.register(mcpShutdown)
}

export default fp(mcpGateway, { name: 'mcp-gateway', fastify: '5.x' })
