/**
 * Inbound auth for the MCP endpoints (off unless registered): static API keys or JWT bearer
 * tokens, the gateway acting as an OAuth 2.1 resource server (MCP authorization spec). Sets
 * `request.mcpPrincipal`; sessions are bound to it (another principal's session id gets 404) and
 * per-tool rules decide which tools each principal sees and may call. Serves the RFC 9728
 * protected resource metadata that 401 answers point at.
 */
import { readFile } from 'node:fs/promises'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiKeyVerifier, parseKeyFile } from '../lib/auth/api-keys.ts'
import { JwtVerifier, type JwtOptions } from '../lib/auth/jwt.ts'
import type { Principal, Verifier } from '../lib/auth/principal.ts'
import { toolRuleInterceptors, checkToolRules } from '../lib/auth/tool-rules.ts'
import { GatewayErrors } from '../lib/errors.ts'
import { httpUrlString, invalid, parseOptions } from '../lib/options.ts'
import { checkAuthOptions, type CheckedAuthOptions, type McpAuthOptions } from './auth-options.ts'

export type { McpAuthOptions } from './auth-options.ts'

interface Metadata {
  document: Record<string, unknown>
  /** Where the document is served, relative to the origin. */
  paths: string[]
  /** Absolute URL for `resource_metadata`. */
  url: string
}

async function verifierFor (options: CheckedAuthOptions): Promise<Verifier> {
  if (options.apiKeys === undefined) return new JwtVerifier(options.jwt as JwtOptions)
  const { keys, keysFile, header } = options.apiKeys
  const all = [...keys]
  if (keysFile !== undefined) {
    try {
      all.push(...parseKeyFile(await readFile(keysFile, 'utf8'), keysFile))
    } catch (err) {
      throw invalid('auth.apiKeys.keysFile', (err as Error).message)
    }
  }
  if (all.length === 0) throw invalid('auth.apiKeys', 'has no keys (give keys or keysFile)')
  return new ApiKeyVerifier({ keys: all, header })
}

function metadataFor (options: CheckedAuthOptions): Metadata | undefined {
  const spec = options.metadata
  const resource = spec.resource ?? options.jwt?.audience
  if (resource === undefined) return undefined
  // The audience stands in for the resource: it must be a URL too.
  const url = new URL(parseOptions(httpUrlString(), 'auth.metadata.resource', resource))
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  const document: Record<string, unknown> = {
    resource,
    authorization_servers: spec.authorizationServers,
    bearer_methods_supported: ['header']
  }
  if (spec.scopesSupported.length > 0) document.scopes_supported = spec.scopesSupported
  if (spec.resourceName !== undefined) document.resource_name = spec.resourceName
  // RFC 9728: the well-known path goes between the host and the resource's own path.
  const wellKnown = `/.well-known/oauth-protected-resource${path}`
  return { document, paths: path === '' ? [wellKnown] : [wellKnown, '/.well-known/oauth-protected-resource'], url: `${url.origin}${wellKnown}` }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The inbound auth in force (the auth plugin registered). */
    mcpAuth: { verifier: Verifier, requiredScopes: string[], methods: Array<'api-key' | 'jwt'> }
  }
}

async function mcpAuth (fastify: FastifyInstance, options: McpAuthOptions): Promise<void> {
  const checked = checkAuthOptions(options)
  const verifier = await verifierFor(checked)
  const requiredScopes = checked.requiredScopes
  const metadata = metadataFor(checked)
  const rules = checkToolRules(checked.tools)
  const header = checked.apiKeys?.header ?? 'authorization'
  const bearer = checked.jwt !== undefined || header.toLowerCase() === 'authorization'
  const challenge = (extra: string): string => {
    const parts = [metadata === undefined ? undefined : `resource_metadata="${metadata.url}"`, extra].filter((p) => p !== undefined && p.length > 0)
    return bearer ? `Bearer ${parts.join(', ')}`.trim() : `ApiKey header="${header}"`
  }

  fastify.decorate('mcpAuth', { verifier, requiredScopes, methods: [checked.apiKeys === undefined ? 'jwt' : 'api-key'] })

  // Runs for the MCP endpoints only (their routes carry `config.mcp`); the host app's routes are
  // its own business.
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.config?.mcp === undefined) return
    let principal: Principal
    try {
      principal = await verifier.verify(request.headers)
    } catch (err) {
      const presented = request.headers.authorization !== undefined
      reply.header('www-authenticate', challenge(presented && bearer ? 'error="invalid_token"' : ''))
      throw err
    }
    const missing = requiredScopes.filter((scope) => !principal.scopes.includes(scope))
    if (missing.length > 0) {
      reply.header('www-authenticate', challenge(`error="insufficient_scope", scope="${requiredScopes.join(' ')}"`))
      throw new GatewayErrors.INSUFFICIENT_SCOPE(missing.join(' '))
    }
    request.mcpPrincipal = principal
  })

  if (metadata !== undefined) {
    for (const path of metadata.paths) {
      fastify.get(path, async (_request, reply) => {
        void reply.header('cache-control', 'public, max-age=3600')
        return metadata.document
      })
    }
  }

  if (rules.length > 0) {
    if (!fastify.hasDecorator('mcpInterceptors')) throw invalid('auth.tools', 'needs the interceptors plugin (mcp-gateway-interceptors) registered first')
    for (const interceptor of toolRuleInterceptors(rules)) fastify.mcpInterceptors.add(interceptor)
  }
}

export default fp(mcpAuth, {
  name: 'mcp-gateway-auth',
  fastify: '5.x',
  dependencies: ['mcp-gateway-core']
})
