/**
 * The gateway-wide interceptor chain (`fastify.mcpInterceptors`): any plugin adds to it; the
 * config file's rules are compiled into it first. The proxy runs it, followed by its route's own
 * interceptors (`config.mcp.interceptors`), on every message in both directions.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { CHAIN_DEFAULTS, InterceptorChain, type Interceptor } from '../lib/interceptors/chain.ts'
import { compileRules, type Rule } from '../lib/interceptors/rules.ts'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger } from '../lib/options.ts'

export interface McpInterceptorsOptions {
  /** Declarative rules, run first, in order (see README). */
  rules?: Rule[]
  /** Interceptors run after the rules, in order. */
  interceptors?: Interceptor[]
  /**
   * A handler that throws or times out: `closed` blocks its message, `open` lets it through.
   * @default 'closed'
   */
  onError?: 'closed' | 'open'
  /**
   * Longest a handler may take.
   * @default 5000
   */
  timeoutMs?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Interceptors every MCP message goes through: `fastify.mcpInterceptors.add({ name, match, handler })`. */
    mcpInterceptors: InterceptorChain
  }
}

async function mcpInterceptors (fastify: FastifyInstance, options: McpInterceptorsOptions): Promise<void> {
  if (!isPlainObject(options)) throw invalid('interceptors', 'must be an object')
  knownKeys('interceptors', options, [...REGISTER_OPTION_KEYS, 'rules', 'interceptors', 'onError', 'timeoutMs'])
  const onError = options.onError ?? CHAIN_DEFAULTS.onError
  if (onError !== 'closed' && onError !== 'open') throw invalid('interceptors.onError', 'must be "closed" or "open"')
  const timeoutMs = optionalInteger('interceptors.timeoutMs', options.timeoutMs, 1, CHAIN_DEFAULTS.timeoutMs)
  if (options.interceptors !== undefined && !Array.isArray(options.interceptors)) throw invalid('interceptors.interceptors', 'must be an array')
  const chain = new InterceptorChain({ onError, timeoutMs }, [...compileRules(options.rules ?? []), ...(options.interceptors ?? [])])
  fastify.decorate('mcpInterceptors', chain)
}

export default fp(mcpInterceptors, { name: 'mcp-gateway-interceptors', fastify: '5.x' })
