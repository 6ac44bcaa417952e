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
import { ApiKeyVerifier, parseKeyFile, type ApiKey } from '../lib/auth/api-keys.ts'
import { JwtVerifier, type JwtOptions } from '../lib/auth/jwt.ts'
import type { Principal, Verifier } from '../lib/auth/principal.ts'
import { toolRuleInterceptors, checkToolRules, type ToolRule } from '../lib/auth/tool-rules.ts'
import { GatewayErrors } from '../lib/errors.ts'
import { REGISTER_OPTION_KEYS, httpUrl, invalid, isPlainObject, knownKeys } from '../lib/options.ts'

export interface McpAuthOptions {
  /** Static API keys. Give this or `jwt`. */
  apiKeys?: {
    /** Keys given here (use `${ENV}` references in a config file). */
    keys?: ApiKey[]
    /** A file of keys, one `name:key[:scopes]` per line. */
    keysFile?: string
    /** @default 'authorization' (as `Bearer <key>`) */
    header?: string
  }
  /** JWT bearer tokens, checked against the authorization server's keys. */
  jwt?: JwtOptions
  /** Scopes every request needs; a token without them gets 403 naming them. @default [] */
  requiredScopes?: string[]
  /**
   * RFC 9728 protected resource metadata, served at `/.well-known/oauth-protected-resource`
   * (and under the resource's path), and named in every 401's `WWW-Authenticate`.
   */
  metadata?: {
    /** The gateway's resource URI (what tokens must be minted for). @default jwt.audience */
    resource?: string
    authorizationServers?: string[]
    scopesSupported?: string[]
    resourceName?: string
  }
  /**
   * Which tools each principal may see and call. Without rules every authenticated principal may
   * use every tool; with rules, only what some rule grants.
   */
  tools?: ToolRule[]
}

interface Metadata {
  document: Record<string, unknown>
  /** Where the document is served, relative to the origin. */
  paths: string[]
  /** Absolute URL for `resource_metadata`. */
  url: string
}

function stringList (name: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || /[\r\n"]/.test(item))) {
    throw invalid(name, 'must be an array of strings (no quotes or line breaks)')
  }
  return [...value] as string[]
}

async function verifierFor (options: McpAuthOptions): Promise<Verifier> {
  if ((options.apiKeys === undefined) === (options.jwt === undefined)) throw invalid('auth', 'give exactly one of apiKeys or jwt')
  if (options.apiKeys !== undefined) {
    const spec = options.apiKeys
    if (!isPlainObject(spec)) throw invalid('auth.apiKeys', 'must be an object')
    const keys: ApiKey[] = []
    for (const [index, key] of (spec.keys ?? []).entries()) {
      if (!isPlainObject(key) || typeof key.name !== 'string' || key.name.length === 0 || typeof key.key !== 'string' || key.key.length < 16) {
        throw invalid(`auth.apiKeys.keys[${index}]`, 'must be { name, key } with a key of at least 16 characters')
      }
      keys.push({ name: key.name, key: key.key, scopes: stringList(`auth.apiKeys.keys[${index}].scopes`, key.scopes) })
    }
    if (spec.keysFile !== undefined) {
      try {
        keys.push(...parseKeyFile(await readFile(spec.keysFile, 'utf8'), spec.keysFile))
      } catch (err) {
        throw invalid('auth.apiKeys.keysFile', (err as Error).message)
      }
    }
    if (keys.length === 0) throw invalid('auth.apiKeys', 'has no keys (give keys or keysFile)')
    if (spec.header !== undefined && (typeof spec.header !== 'string' || !/^[A-Za-z0-9-]+$/.test(spec.header))) throw invalid('auth.apiKeys.header', 'must be a header name')
    return new ApiKeyVerifier({ keys, header: spec.header })
  }
  const jwt = options.jwt as JwtOptions
  if (!isPlainObject(jwt)) throw invalid('auth.jwt', 'must be an object')
  if ((jwt.jwksUrl === undefined) === (jwt.jwks === undefined)) throw invalid('auth.jwt', 'give exactly one of jwksUrl or jwks')
  if (jwt.jwksUrl !== undefined) httpUrl('auth.jwt.jwksUrl', jwt.jwksUrl)
  if (jwt.jwks !== undefined && (!isPlainObject(jwt.jwks) || !Array.isArray(jwt.jwks.keys))) throw invalid('auth.jwt.jwks', 'must be a JWK Set ({ "keys": [...] })')
  if (typeof jwt.issuer !== 'string' || jwt.issuer.length === 0) throw invalid('auth.jwt.issuer', 'is required')
  if (typeof jwt.audience !== 'string' || jwt.audience.length === 0) throw invalid('auth.jwt.audience', 'is required (the gateway\'s resource URI)')
  return new JwtVerifier(jwt)
}

function metadataFor (options: McpAuthOptions): Metadata | undefined {
  const spec = options.metadata ?? {}
  if (!isPlainObject(spec)) throw invalid('auth.metadata', 'must be an object')
  const resource = spec.resource ?? options.jwt?.audience
  if (resource === undefined) return undefined
  const url = new URL(httpUrl('auth.metadata.resource', resource))
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  const document: Record<string, unknown> = {
    resource,
    authorization_servers: stringList('auth.metadata.authorizationServers', spec.authorizationServers),
    bearer_methods_supported: ['header']
  }
  const scopes = stringList('auth.metadata.scopesSupported', spec.scopesSupported)
  if (scopes.length > 0) document.scopes_supported = scopes
  if (spec.resourceName !== undefined) document.resource_name = String(spec.resourceName)
  // RFC 9728: the well-known path goes between the host and the resource's own path.
  const wellKnown = `/.well-known/oauth-protected-resource${path}`
  return { document, paths: path === '' ? [wellKnown] : [wellKnown, '/.well-known/oauth-protected-resource'], url: `${url.origin}${wellKnown}` }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The inbound auth in force (the auth plugin registered). */
    mcpAuth: { verifier: Verifier, requiredScopes: string[] }
  }
}

async function mcpAuth (fastify: FastifyInstance, options: McpAuthOptions): Promise<void> {
  if (!isPlainObject(options as unknown)) throw invalid('auth', 'must be an object')
  knownKeys('auth', options as unknown as Record<string, unknown>, [...REGISTER_OPTION_KEYS, 'apiKeys', 'jwt', 'requiredScopes', 'metadata', 'tools'])
  const verifier = await verifierFor(options)
  const requiredScopes = stringList('auth.requiredScopes', options.requiredScopes)
  const metadata = metadataFor(options)
  const rules = checkToolRules(options.tools)
  const bearer = options.jwt !== undefined || (options.apiKeys?.header ?? 'authorization').toLowerCase() === 'authorization'
  const challenge = (extra: string): string => {
    const parts = [metadata === undefined ? undefined : `resource_metadata="${metadata.url}"`, extra].filter((p) => p !== undefined && p.length > 0)
    return bearer ? `Bearer ${parts.join(', ')}`.trim() : `ApiKey header="${options.apiKeys?.header as string}"`
  }

  fastify.decorate('mcpAuth', { verifier, requiredScopes })

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
