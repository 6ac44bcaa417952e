/**
 * The gateway-wide interceptor chain (`fastify.mcpInterceptors`): any plugin adds to it; the
 * config file's rules are compiled into it first. The proxy runs it, followed by its route's own
 * interceptors (`config.mcp.interceptors`), on every message in both directions.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { InterceptorChain } from '../lib/interceptors/chain.ts'
import { checkInterceptorsOptions, type McpInterceptorsOptions } from './interceptors-options.ts'

export type { McpInterceptorsOptions } from './interceptors-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Interceptors every MCP message goes through: `fastify.mcpInterceptors.add({ name, match, handler })`. */
    mcpInterceptors: InterceptorChain
  }
}

async function mcpInterceptors (fastify: FastifyInstance, options: McpInterceptorsOptions): Promise<void> {
  const { onError, timeoutMs, interceptors } = checkInterceptorsOptions(options)
  const chain = new InterceptorChain({ onError, timeoutMs }, interceptors)
  fastify.decorate('mcpInterceptors', chain)
}

export default fp(mcpInterceptors, { name: 'mcp-gateway-interceptors', fastify: '5.x' })
