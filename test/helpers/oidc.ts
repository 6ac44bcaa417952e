/**
 * A real authorization server for the identity tests: `oidc-provider` (a certified OpenID
 * Connect provider) on a free port, serving as the gateway's inbound IdP and as its upstreams'
 * authorization server. JWT access tokens per resource indicator (RFC 8707), client credentials,
 * refresh and revocation are its own; RFC 8693 token exchange, which it lacks, is registered
 * through its documented extension point (`registerGrantType`). Users sign in through its dev
 * interactions (any login name, any password), driven by `signIn` as a browser would.
 */
import { randomUUID, createHash, randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { createServer, type Server } from 'node:http'
import Provider, { errors, type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider'
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose'

interface Teardown {
  teardown (fn: () => unknown): void
}

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

export interface IdpOptions {
  clients: ClientMetadata[]
  /** Access token lifetime for every resource, in seconds. @default 300 */
  accessTokenTtl?: number
}

export interface Idp {
  issuer: string
  provider: Provider
  /** Token endpoint requests that succeeded, by grant type (and `registration`: clients registered). */
  grants: Map<string, number>
  /** The inbound client's access token for `user`, for `resource` (signed in through the dev interactions). */
  userToken: (user: string, resource: string) => Promise<string>
  /** Sets the lifetime of access tokens issued from now on, in seconds. */
  setAccessTokenTtl: (seconds: number) => void
  server: Server
}

/** The inbound client every test user signs in with (a public client: PKCE, no secret). */
export const INBOUND_CLIENT: ClientMetadata = {
  client_id: 'mcp-inbound',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1:9/inbound-callback']
}

export async function startIdp (t: Teardown, options: IdpOptions): Promise<Idp> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk: JWK = { ...await exportJWK(privateKey), kid: 'test-key', alg: 'RS256', use: 'sig' }
  const publicJwk: JWK = { kty: jwk.kty, n: jwk.n, e: jwk.e, kid: jwk.kid, alg: jwk.alg, use: jwk.use }
  const localKeys = createLocalJWKSet({ keys: [publicJwk] })
  let ttl = options.accessTokenTtl ?? 300
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [INBOUND_CLIENT, ...options.clients],
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['identity-tests'] },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    scopes: ['openid', 'offline_access', 'mcp'],
    pkce: { required: () => true },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      // Open RFC 7591 registration, for the gateway's dynamic registration.
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({ scope: 'mcp', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: 'RS256' } } })
      }
    }
  })
  const grants = new Map<string, number>()
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grant = String(ctx.oidc.params?.grant_type)
    grants.set(grant, (grants.get(grant) ?? 0) + 1)
  })
  provider.on('registration_create.success', () => { grants.set('registration', (grants.get('registration') ?? 0) + 1) })
  registerTokenExchange(provider, issuer, privateKey, localKeys, () => ttl)
  server.on('request', provider.callback())
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return {
    issuer,
    provider,
    grants,
    server,
    setAccessTokenTtl: (seconds) => { ttl = seconds },
    userToken: async (user, resource) => await inboundToken(issuer, user, resource)
  }
}

/**
 * RFC 8693 for the tests: a subject token this server issued (verified with its own key) becomes
 * a JWT for the one resource asked for, with the subject's `sub`, the client as `client_id` and,
 * given an actor token, the actor as `act.sub`.
 */
function registerTokenExchange (provider: Provider, issuer: string, key: Parameters<SignJWT['sign']>[0], keys: ReturnType<typeof createLocalJWKSet>, ttl: () => number): void {
  const parameters = ['subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'audience', 'scope', 'actor_token', 'actor_token_type']
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx: KoaContextWithOIDC) => {
    const params = ctx.oidc.params as Record<string, string | undefined>
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token')
    if (params.resource === undefined) throw new errors.InvalidTarget('a resource is required')
    let subject: string
    try {
      subject = String((await jwtVerify(params.subject_token ?? '', keys, { issuer })).payload.sub)
    } catch {
      throw new errors.InvalidGrant('the subject token is not valid')
    }
    let act: { sub: string } | undefined
    if (params.actor_token !== undefined) {
      try {
        act = { sub: String((await jwtVerify(params.actor_token, keys, { issuer })).payload.sub) }
      } catch {
        throw new errors.InvalidGrant('the actor token is not valid')
      }
    }
    const client = ctx.oidc.client?.clientId as string
    const token = await new SignJWT({ client_id: client, scope: 'mcp', ...(act === undefined ? {} : { act }) })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'at+jwt' })
      .setIssuer(issuer).setSubject(subject).setAudience(params.resource).setIssuedAt().setJti(randomUUID())
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttl())
      .sign(key)
    ctx.body = { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttl() }
  }, parameters)
}

/** A cookie jar of one browser. */
class Browser {
  private readonly cookies = new Map<string, string>()

  async fetch (url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '))
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const at = (pair ?? '').indexOf('=')
      if (at > 0) this.cookies.set((pair as string).slice(0, at), (pair as string).slice(at + 1))
    }
    return res
  }
}

export interface SignedIn {
  /** Where the authorization server sent the browser back (the client's redirect URI, with the code). */
  location: URL
  /** The page there, when it was followed. */
  page?: { status: number, text: string }
}

/**
 * Follows a sign-in link as a user's browser would: submits each page's form (the gateway's
 * sign-in page, then the authorization server's login as `user` and its consent), and stops at
 * the redirect back to the client (`state` with `code` or `error`), following it too with
 * `follow`. Bounded: at most 12 steps.
 */
export async function signIn (link: string, user: string, options: { follow?: boolean, browser?: Browser } = {}): Promise<SignedIn> {
  const browser = options.browser ?? new Browser()
  let url = link
  let res = await browser.fetch(url)
  for (let step = 0; step < 12; step++) {
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location') as string, url)
      await res.arrayBuffer()
      if (location.searchParams.has('state') && (location.searchParams.has('code') || location.searchParams.has('error'))) {
        if (options.follow !== true) return { location }
        const back = await browser.fetch(location.href)
        return { location, page: { status: back.status, text: await back.text() } }
      }
      url = location.href
      res = await browser.fetch(url)
      continue
    }
    const html = await res.text()
    const form = /<form[^>]*>/.exec(html)?.[0]
    if (res.status !== 200 || form === undefined) throw new Error(`${url} answered ${res.status}: ${html.slice(0, 300)}`)
    const fields = new URLSearchParams()
    for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields.set(name as string, (value as string).replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code))))
    if (fields.get('prompt') === 'login') {
      fields.set('login', user)
      fields.set('password', 'any')
    }
    const action = /action="([^"]+)"/.exec(form)?.[1]
    url = new URL(action ?? url, url).href
    res = await browser.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin }, body: fields.toString() })
  }
  throw new Error('signIn: too many steps')
}

/** An inbound user's access token for the gateway: authorization code with PKCE, as a real client does. */
async function inboundToken (issuer: string, user: string, resource: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const authorize = new URL(`${issuer}/auth`)
  authorize.search = new URLSearchParams({
    client_id: INBOUND_CLIENT.client_id,
    response_type: 'code',
    redirect_uri: (INBOUND_CLIENT.redirect_uris as string[])[0] as string,
    scope: 'mcp',
    resource,
    state: randomUUID(),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256'
  }).toString()
  const { location } = await signIn(authorize.href, user)
  const code = location.searchParams.get('code')
  if (code === null) throw new Error(`no code in ${location.href}`)
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: INBOUND_CLIENT.client_id, redirect_uri: (INBOUND_CLIENT.redirect_uris as string[])[0] as string, code_verifier: verifier, resource }).toString()
  })
  const body = await res.json() as { access_token?: string }
  if (body.access_token === undefined) throw new Error(`token endpoint: ${JSON.stringify(body)}`)
  return body.access_token
}
