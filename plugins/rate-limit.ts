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
import { checkRateLimitOptions, type McpRateLimitOptions } from './rate-limit-options.ts'

export type { McpRateLimitOptions } from './rate-limit-options.ts'

async function mcpRateLimit (fastify: FastifyInstance, options: McpRateLimitOptions): Promise<void> {
  const auth = fastify.hasDecorator('mcpAuth')
  const { max, timeWindowMs: timeWindow, keyBy } = checkRateLimitOptions(options, auth)
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
