/**
 * Per-user upstream identity (`fastify.mcpIdentity`): the store of each user's tokens for each
 * `oauth` upstream (memory, or Redis when the gateway's store is Redis, so a user signed in
 * through one instance is signed in on all), sealed with keys from the environment, and the OAuth
 * callback users come back to after signing in. Register before the proxy endpoints.
 */
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
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

/** A page for the user's browser: what happened (and, with `flow`, the button that goes on to sign in). */
function page (reply: FastifyReply, status: number, title: string, text: string, flow?: string): FastifyReply {
  const button = flow === undefined ? '' : `<form method="post"><input type="hidden" name="flow" value="${escape(flow)}"><button type="submit">Continue to sign in</button></form>`
  return reply.code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    // Not framed (its button must be the user's own click); no referrer leaves for other sites,
    // while the same-origin POST still carries its Origin (a no-referrer page would send "null").
    .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'same-origin')
    .send(`<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1><p>${escape(text)}</p>${button}</body></html>`)
}

async function mcpIdentity (fastify: FastifyInstance, options: McpIdentityOptions): Promise<void> {
  const checked = checkIdentityOptions(options)
  const sealer = new Sealer(checked.keys ?? keysFromEnvironment(), checked.keys === undefined ? 'identity.keys (MCP_GATEWAY_TOKEN_KEYS)' : 'identity.keys')
  const stores = fastify.hasDecorator('mcpStores') ? fastify.mcpStores : undefined
  const store = stores?.client === undefined ? new MemoryTokenStore() : new RedisTokenStore(stores.client, stores.keyPrefix ?? 'mcp-gw:')
  const identity = new UpstreamIdentity({ store, sealer, callbackUrl: checked.callbackUrl, flowTtlMs: checked.flowTtlMs, tokenTtlMs: checked.tokenTtlMs })
  fastify.decorate('mcpIdentity', identity)

  await fastify.register(async (scope) => {
    // A host app that reads cookies already has the plugin (it may not be registered twice).
    if (!scope.hasReplyDecorator('setCookie')) await scope.register(cookie)
    callbackRoutes(scope, identity, checked.callbackUrl, checked.flowTtlMs)
  })
}

const FLOW = { type: 'string', maxLength: 512 } as const
/** The browser that clicked a sign-in page's button: its sign-ins are finished in it alone. */
const BROWSER_COOKIE = 'mcp_gw_signin'
const BROWSER_VALUE = /^[A-Za-z0-9_-]{43}$/

/**
 * One path, three uses: the sign-in page a consent prompt links to (`?flow=`: names the upstream
 * and the gateway principal the account will serve; its button goes on to the authorization
 * server), that button (a same-origin POST), and the authorization server's redirect back
 * (`?state=&code=`). The page stands between a link and a sign-in, so a link passed to someone
 * else shows them whose access they would be granting.
 */
function callbackRoutes (scope: FastifyInstance, identity: UpstreamIdentity, callbackUrl: string, flowTtlMs: number): void {
  const { pathname, origin, protocol } = new URL(callbackUrl)
  // Only this scope reads forms: the host app's routes keep their own parser (one it registered
  // for forms is replaced here only, in this encapsulated scope).
  if (scope.hasContentTypeParser('application/x-www-form-urlencoded')) scope.removeContentTypeParser('application/x-www-form-urlencoded')
  scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  const querystring = { type: 'object', properties: { flow: FLOW, state: FLOW, code: { type: 'string', maxLength: 4096 }, error: { type: 'string', maxLength: 256 } } }
  // Warnings only in the request log: its URL holds a live sign-in's id (or code and state).
  scope.get(pathname, { schema: { querystring }, logLevel: 'warn' }, async (request, reply) => {
    const { flow, state, code, error } = request.query as { flow?: string, state?: string, code?: string, error?: string }
    const browser = request.cookies[BROWSER_COOKIE]
    if (flow !== undefined) {
      const found = await identity.flow(flow)
      if (found === undefined) return page(reply, 400, 'Sign-in expired', 'This sign-in is unknown, used already or expired. Go back to your client to start again.')
      return page(reply, 200, `Sign in to ${found.upstream}`, `Requests that ${found.principal} makes through this gateway will use the ${found.upstream} account you sign in with. Continue only if you are ${found.principal}.`, flow)
    }
    if (state === undefined) return page(reply, 400, 'Sign-in failed', 'The authorization server sent no state back.')
    if (error !== undefined || code === undefined) {
      // Refused or cancelled at the authorization server: the sign-in is over, the client may ask again.
      await identity.callback(state, undefined, browser).catch(() => {})
      return page(reply, 400, 'Sign-in cancelled', `The authorization server answered ${error ?? 'without a code'}. Go back to your client to try again.`)
    }
    try {
      const done = await identity.callback(state, code, browser)
      request.log.info({ upstream: done.upstream, principal: done.principal }, 'user signed in to upstream')
      return page(reply, 200, 'Signed in', `The gateway can now reach ${done.upstream} for you. Go back to your client and send the request again.`)
    } catch (err) {
      request.log.warn({ err }, 'OAuth callback failed')
      return page(reply, 400, 'Sign-in failed', (err as Error).message)
    }
  })
  scope.post(pathname, { schema: { body: { type: 'object', required: ['flow'], properties: { flow: FLOW } } }, logLevel: 'warn' }, async (request, reply) => {
    // The page's own button only: a form posted from another site does not start a sign-in.
    if (request.headers.origin !== origin) return page(reply, 403, 'Sign-in refused', 'Start the sign-in from the page your client linked to.')
    const { flow } = request.body as { flow: string }
    const found = await identity.flow(flow)
    if (found === undefined) return page(reply, 400, 'Sign-in expired', 'This sign-in is unknown, used already or expired. Go back to your client to start again.')
    // One value per browser, for all its sign-ins; sent back on the authorization server's
    // redirect (a top-level navigation: Lax), never readable by a page script.
    const held = request.cookies[BROWSER_COOKIE]
    const browser = held !== undefined && BROWSER_VALUE.test(held) ? held : randomBytes(32).toString('base64url')
    await identity.bind(flow, browser)
    return reply.code(303)
      .setCookie(BROWSER_COOKIE, browser, { path: pathname, httpOnly: true, sameSite: 'lax', secure: protocol === 'https:', maxAge: Math.ceil(flowTtlMs / 1000) })
      .header('location', found.authorizationUrl).header('cache-control', 'no-store').send()
  })
}

export default fp(mcpIdentity, { name: 'mcp-gateway-identity', fastify: '5.x', dependencies: ['mcp-gateway-core'] })
