/**
 * Per-user upstream identity (`fastify.mcpIdentity`): the store of each user's tokens for each
 * `oauth` upstream (memory, or Redis when the gateway's store is Redis, so a user signed in
 * through one instance is signed in on all), sealed with keys from the environment, and the OAuth
 * callback users come back to after signing in. Register before the proxy endpoints.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { RedisTokenStore } from '../lib/redis/token-store.ts'
import { UpstreamIdentity } from '../lib/upstream-auth/identity.ts'
import { keysFromEnvironment, Sealer } from '../lib/upstream-auth/sealed.ts'
import { MemoryTokenStore } from '../lib/upstream-auth/token-store.ts'
import { checkIdentityOptions, type McpIdentityOptions } from './identity-options.ts'

export type { McpIdentityOptions } from './identity-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-user upstream tokens and sign-ins (the identity plugin). */
    mcpIdentity: UpstreamIdentity
  }
}

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The page the user's browser lands on: what happened, and that the client can go on. */
function page (reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  return reply.code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'")
    .send(`<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1><p>${escape(text)}</p></body></html>`)
}

async function mcpIdentity (fastify: FastifyInstance, options: McpIdentityOptions): Promise<void> {
  const checked = checkIdentityOptions(options)
  const sealer = new Sealer(checked.keys ?? keysFromEnvironment(), checked.keys === undefined ? 'identity.keys (MCP_GATEWAY_TOKEN_KEYS)' : 'identity.keys')
  const stores = fastify.hasDecorator('mcpStores') ? fastify.mcpStores : undefined
  const store = stores?.client === undefined ? new MemoryTokenStore() : new RedisTokenStore(stores.client, stores.keyPrefix ?? 'mcp-gw:')
  const identity = new UpstreamIdentity({ store, sealer, callbackUrl: checked.callbackUrl, flowTtlMs: checked.flowTtlMs, tokenTtlMs: checked.tokenTtlMs })
  fastify.decorate('mcpIdentity', identity)

  const querySchema = { type: 'object', properties: { state: { type: 'string', maxLength: 512 }, code: { type: 'string', maxLength: 4096 }, error: { type: 'string', maxLength: 256 } } }
  fastify.get(new URL(checked.callbackUrl).pathname, { schema: { querystring: querySchema } }, async (request, reply) => {
    const { state, code, error } = request.query as { state?: string, code?: string, error?: string }
    if (state === undefined) return page(reply, 400, 'Sign-in failed', 'The authorization server sent no state back.')
    if (error !== undefined || code === undefined) {
      // Refused or cancelled at the authorization server: the sign-in is over, the client may ask again.
      await identity.callback(state, undefined).catch(() => {})
      return page(reply, 400, 'Sign-in cancelled', `The authorization server answered ${error ?? 'without a code'}. Go back to your client to try again.`)
    }
    try {
      const flow = await identity.callback(state, code)
      request.log.info({ upstream: flow.upstream, principal: flow.principal }, 'user signed in to upstream')
      return page(reply, 200, 'Signed in', `The gateway can now reach ${flow.upstream} for you. Go back to your client and send the request again.`)
    } catch (err) {
      request.log.warn({ err }, 'OAuth callback failed')
      return page(reply, 400, 'Sign-in failed', (err as Error).message)
    }
  })
}

export default fp(mcpIdentity, { name: 'mcp-gateway-identity', fastify: '5.x', dependencies: ['mcp-gateway-core'] })
