/**
 * Rate limits on the MCP endpoints, with `@fastify/rate-limit`: per principal when inbound auth is
 * on (else per client IP), counted in Redis when the gateway runs on Redis (every instance shares
 * the budget), in memory otherwise. A request over the limit gets 429 with `Retry-After` and
 * JSON-RPC -32059. The host app's own routes are not limited by this plugin.
 */
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayErrors } from '../lib/errors.ts'
import { REGISTER_OPTION_KEYS, invalid, isPlainObject, knownKeys, optionalInteger } from '../lib/options.ts'

export interface McpRateLimitOptions {
  /** Requests allowed per key in each window. */
  max: number
  /** The window, in milliseconds. @default 60000 */
  timeWindowMs?: number
  /**
   * What a budget belongs to: `principal` (needs the auth plugin) or `ip`.
   * @default 'principal' when auth is on, else 'ip'
   */
  keyBy?: 'principal' | 'ip'
}

async function mcpRateLimit (fastify: FastifyInstance, options: McpRateLimitOptions): Promise<void> {
  if (!isPlainObject(options as unknown)) throw invalid('rateLimit', 'must be an object')
  knownKeys('rateLimit', options as unknown as Record<string, unknown>, [...REGISTER_OPTION_KEYS, 'max', 'timeWindowMs', 'keyBy'])
  const max = optionalInteger('rateLimit.max', options.max, 1, 0)
  if (options.max === undefined) throw invalid('rateLimit.max', 'is required')
  const timeWindow = optionalInteger('rateLimit.timeWindowMs', options.timeWindowMs, 1, 60_000)
  const auth = fastify.hasDecorator('mcpAuth')
  const keyBy = options.keyBy ?? (auth ? 'principal' : 'ip')
  if (keyBy !== 'principal' && keyBy !== 'ip') throw invalid('rateLimit.keyBy', 'must be "principal" or "ip"')
  if (keyBy === 'principal' && !auth) throw invalid('rateLimit.keyBy', '"principal" needs the auth plugin registered first')
  const stores = fastify.hasDecorator('mcpStores') ? fastify.mcpStores : undefined
  const redis = stores?.type === 'redis' && fastify.hasDecorator('redis') ? fastify.redis : undefined

  await fastify.register(rateLimit, {
    global: false,
    ...(redis === undefined ? {} : { redis, nameSpace: `${stores?.keyPrefix ?? 'mcp-gw:'}rl:` }),
    // Redis away: requests that need it get 503 from the store anyway; do not add a 500 here.
    skipOnError: true
  })
  const limit = fastify.rateLimit({
    max,
    timeWindow,
    keyGenerator: (request: FastifyRequest) => keyBy === 'principal' ? `p:${request.mcpPrincipal?.id ?? ''}` : `ip:${request.ip}`,
    errorResponseBuilder: (_request: FastifyRequest, context: { after: string, ttl: number }) =>
      new GatewayErrors.RATE_LIMITED(`more than ${max} requests in ${timeWindow / 1000} s`, Math.ceil(context.ttl / 1000))
  })
  // After auth (hooks run in registration order), so the principal is known.
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.config?.mcp === undefined) return
    await limit.call(fastify, request, reply)
  })
}

export default fp(mcpRateLimit, {
  name: 'mcp-gateway-rate-limit',
  fastify: '5.x'
})
