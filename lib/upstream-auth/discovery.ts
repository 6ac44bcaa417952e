/**
 * Where a per-user OAuth upstream's users sign in: its RFC 9728 protected resource metadata names
 * the authorization server (and the resource URI tokens must be for), whose RFC 8414 metadata (or
 * OpenID Connect discovery, for servers that publish only that) gives the endpoints. PKCE with
 * S256 must be offered: MCP's authorization spec has clients refuse a server that does not say so.
 * An upstream names its own authorization server: set `authorizationServer` to pin it instead of
 * trusting the upstream's word (the gateway sends that server its client secret).
 */
import { request } from 'undici'
import { GatewayErrors } from '../errors.ts'
import { isLoopbackHost } from '../origin.ts'
import { drain, readBounded } from '../relay/body.ts'

export interface AuthorizationServer {
  issuer: string
  authorizationEndpoint: string
  tokenEndpoint: string
  revocationEndpoint?: string
  /** RFC 7591 dynamic client registration, when offered. */
  registrationEndpoint?: string
  /** The resource URI to ask tokens for (RFC 8707). */
  resource: string
}

const FETCH_TIMEOUT_MS = 10_000
const MAX_DOCUMENT_BYTES = 256 * 1024

/**
 * An endpoint the gateway sends secrets to (its client secret, codes, refresh tokens) or sends
 * users to: https, or http on loopback only (a test server, a sidecar).
 */
function safeEndpoint (value: unknown): value is string {
  if (typeof value !== 'string') return false
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
}

async function getJson (url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await request(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    if (res.statusCode !== 200) {
      drain(res.body)
      return undefined
    }
    const body: unknown = JSON.parse((await readBounded(res.body, MAX_DOCUMENT_BYTES)).toString('utf8'))
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** RFC 9728 / RFC 8414: the well-known name goes between the origin and the path. */
function wellKnown (base: string, name: string): string[] {
  const url = new URL(base)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  const inserted = `${url.origin}/.well-known/${name}${path}`
  return path === '' ? [inserted] : [inserted, `${url.origin}/.well-known/${name}`]
}

async function protectedResource (upstreamUrl: string): Promise<{ issuer?: string, resource?: string }> {
  for (const url of wellKnown(upstreamUrl, 'oauth-protected-resource')) {
    const document = await getJson(url)
    if (document === undefined) continue
    const servers = Array.isArray(document.authorization_servers) ? document.authorization_servers.filter((s): s is string => typeof s === 'string') : []
    return { issuer: servers[0], resource: typeof document.resource === 'string' ? document.resource : undefined }
  }
  return {}
}

async function serverMetadata (issuer: string): Promise<Record<string, unknown> | undefined> {
  const candidates = [...wellKnown(issuer, 'oauth-authorization-server'), ...wellKnown(issuer, 'openid-configuration'), `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`]
  for (const url of new Set(candidates)) {
    const document = await getJson(url)
    // RFC 8414 section 3.3: the issuer in the document must be the one asked for.
    if (document !== undefined && document.issuer === issuer) return document
  }
  return undefined
}

export async function discoverAuthorizationServer (upstream: string, upstreamUrl: string, configured: { issuer?: string, resource?: string }): Promise<AuthorizationServer> {
  const advertised = configured.issuer === undefined ? await protectedResource(upstreamUrl) : {}
  const issuer = configured.issuer ?? advertised.issuer
  if (issuer === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, 'it publishes no protected resource metadata naming its authorization server (set auth.authorizationServer)')
  const metadata = await serverMetadata(issuer)
  if (metadata === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, `no authorization server metadata found for ${issuer}`)
  const { authorization_endpoint: authorize, token_endpoint: token, revocation_endpoint: revocation, registration_endpoint: registration, code_challenge_methods_supported: pkce } = metadata
  if (!safeEndpoint(authorize) || !safeEndpoint(token)) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, `${issuer} publishes no https authorization and token endpoints`)
  if (!Array.isArray(pkce) || !pkce.includes('S256')) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, `${issuer} does not offer PKCE with S256`)
  const server: AuthorizationServer = { issuer, authorizationEndpoint: authorize, tokenEndpoint: token, resource: configured.resource ?? advertised.resource ?? upstreamUrl }
  if (safeEndpoint(revocation)) server.revocationEndpoint = revocation
  if (safeEndpoint(registration)) server.registrationEndpoint = registration
  return server
}
