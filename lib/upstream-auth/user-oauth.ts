/**
 * `oauth`: each user signs in to the upstream once, and the gateway sends that user's own token
 * (authorization code with PKCE, the gateway a confidential client; RFC 8707 resource). A user
 * with no token, or whose token the upstream refuses and cannot be refreshed, gets a consent
 * prompt (`CONSENT_REQUIRED`, with the URL) instead of an upstream error; once they are back
 * through the callback, their next request goes through.
 */
import { createHash } from 'node:crypto'
import { GatewayErrors } from '../errors.ts'
import type { Caller, UpstreamCredentials } from './credentials.ts'
import { urlElicitation } from './consent.ts'
import { registerClient } from './registration.ts'
import { discoverAuthorizationServer, type AuthorizationServer } from './discovery.ts'
import type { Flow, SignInHandler, UpstreamIdentity } from './identity.ts'
import type { OAuthAuth } from './options.ts'
import { requestToken, revokeToken, TokenEndpointError, type ClientAuth, type IssuedToken } from './token-endpoint.ts'

/** A failed discovery is asked again after this long, not on every request. */
const DISCOVERY_RETRY_MS = 30_000

export class UserOAuth implements UpstreamCredentials, SignInHandler {
  readonly mode = 'oauth'
  readonly perUser = true
  private readonly upstream: string
  private readonly url: string
  private readonly auth: OAuthAuth
  private readonly identity: UpstreamIdentity
  /** The configured client; undefined: registered dynamically (`clientAuth`). */
  private readonly client: ClientAuth | undefined
  private server: { value: Promise<AuthorizationServer>, failedAt?: number } | undefined
  /** One refresh per principal at a time on this instance. */
  private readonly refreshing = new Map<string, Promise<IssuedToken | undefined>>()

  constructor (upstream: string, url: string, auth: OAuthAuth, identity: UpstreamIdentity) {
    this.upstream = upstream
    this.url = url
    this.auth = auth
    this.identity = identity
    this.client = auth.clientId === undefined || auth.clientSecret === undefined ? undefined : { clientId: auth.clientId, clientSecret: auth.clientSecret, method: auth.clientAuthMethod }
    identity.register(upstream, this)
  }

  private async authorizationServer (): Promise<AuthorizationServer> {
    const held = this.server
    if (held === undefined || (held.failedAt !== undefined && Date.now() - held.failedAt > DISCOVERY_RETRY_MS)) {
      const entry: { value: Promise<AuthorizationServer>, failedAt?: number } = {
        value: discoverAuthorizationServer(this.upstream, this.url, { issuer: this.auth.authorizationServer, resource: this.auth.resource })
      }
      entry.value.catch(() => { entry.failedAt = Date.now() })
      this.server = entry
    }
    return await (this.server as { value: Promise<AuthorizationServer> }).value
  }

  /** The gateway's client at the server: configured, or registered there once for every instance. */
  private async clientAuth (server: AuthorizationServer): Promise<ClientAuth> {
    if (this.client !== undefined) return this.client
    const endpoint = server.registrationEndpoint
    if (endpoint === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(this.upstream, `${server.issuer} offers no dynamic registration: give auth.clientId and auth.clientSecret`)
    // One registration at a time on this instance; the store settles it between instances.
    if (this.registered === undefined) {
      const registered = this.identity.registration(this.upstream, server.issuer, this.auth.clientAuthMethod, async () => await registerClient(this.upstream, endpoint, this.identity.callbackUrl, this.auth.clientAuthMethod, this.auth.scope))
      registered.catch(() => { if (this.registered === registered) this.registered = undefined })
      this.registered = registered
    }
    return await this.registered
  }

  private registered: Promise<ClientAuth> | undefined

  /** A token request with the gateway's client; a registered client the server forgot is forgotten too. */
  private async token (server: AuthorizationServer, params: Record<string, string | undefined>): Promise<IssuedToken> {
    try {
      return await requestToken(this.upstream, server.tokenEndpoint, await this.clientAuth(server), params)
    } catch (err) {
      if (this.client === undefined && err instanceof TokenEndpointError && err.oauthError === 'invalid_client') {
        this.registered = undefined
        await this.identity.forgetRegistration(this.upstream, server.issuer, this.auth.clientAuthMethod)
      }
      throw err
    }
  }

  async authorization (caller: Caller | undefined): Promise<string> {
    if (caller === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(this.upstream, 'per-user OAuth needs inbound auth (no principal)')
    const token = await this.identity.loadToken(this.upstream, caller.id)
    if (token !== undefined && token.expiresAt - this.auth.refreshBeforeMs > Date.now()) return `Bearer ${token.accessToken}`
    const refreshed = token?.refreshToken === undefined ? undefined : await this.refresh(caller.id, token)
    if (refreshed !== undefined) return `Bearer ${refreshed.accessToken}`
    throw await this.consentRequired(caller)
  }

  async rejected (caller: Caller | undefined, authorization: string, final: boolean): Promise<boolean> {
    if (caller === undefined) return false
    const token = await this.identity.loadToken(this.upstream, caller.id)
    const sent = authorization.slice('Bearer '.length)
    if (!final && token !== undefined && token.accessToken !== sent) return true
    if (!final && token?.refreshToken !== undefined && await this.refresh(caller.id, token) !== undefined) return true
    // Refused and not renewable: the user signs in again (the upstream's challenge is never shown).
    // Only the token refused goes: one refreshed meanwhile by another request stays.
    if (token?.accessToken === sent) await this.identity.deleteToken(this.upstream, caller.id)
    throw await this.consentRequired(caller)
  }

  private async consentRequired (caller: Caller): Promise<Error> {
    // Nobody would see a sign-in link: no sign-in is started; the user's next request asks.
    if (caller.background === true) return new GatewayErrors.UPSTREAM_TOKEN(this.upstream, 'the session\'s user holds no token (they are asked to sign in on their next request)')
    const prompt = await this.identity.prompt(this.upstream, caller.id)
    const err = new GatewayErrors.CONSENT_REQUIRED(this.upstream)
    // `data` for the answers made from the error alone (a GET stream refused, a WebSocket frame).
    return Object.assign(err, { consent: prompt, data: { elicitations: [urlElicitation(prompt, err.message)] } })
  }

  /** A new access token from the refresh token; undefined when the server refused it for good. */
  private refresh (principal: string, token: IssuedToken): Promise<IssuedToken | undefined> {
    let pending = this.refreshing.get(principal)
    if (pending === undefined) {
      pending = this.renew(principal, token).finally(() => this.refreshing.delete(principal))
      this.refreshing.set(principal, pending)
    }
    return pending
  }

  private async renew (principal: string, token: IssuedToken): Promise<IssuedToken | undefined> {
    const server = await this.authorizationServer()
    let issued: IssuedToken
    try {
      issued = await this.token(server, { grant_type: 'refresh_token', refresh_token: token.refreshToken, resource: server.resource, scope: this.auth.scope })
    } catch (err) {
      if (!(err instanceof TokenEndpointError) || err.oauthError !== 'invalid_grant') throw err
      // Another instance may have refreshed it first (the server then rotated the refresh token).
      const stored = await this.identity.loadToken(this.upstream, principal)
      if (stored !== undefined && stored.accessToken !== token.accessToken && stored.expiresAt > Date.now()) return stored
      await this.identity.deleteToken(this.upstream, principal)
      return undefined
    }
    // A server that does not rotate refresh tokens sends none back: the old one stays good.
    issued.refreshToken ??= token.refreshToken
    await this.identity.saveToken(this.upstream, principal, issued)
    return issued
  }

  async authorizationUrl (state: string, verifier: string): Promise<string> {
    const server = await this.authorizationServer()
    const url = new URL(server.authorizationEndpoint)
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: (await this.clientAuth(server)).clientId,
      redirect_uri: this.identity.callbackUrl,
      scope: this.auth.scope,
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: server.resource
    }
    for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value)
    return url.href
  }

  async complete (flow: Flow, code: string): Promise<void> {
    const server = await this.authorizationServer()
    const issued = await this.token(server, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.identity.callbackUrl,
      code_verifier: flow.verifier,
      resource: server.resource
    })
    await this.identity.saveToken(this.upstream, flow.principal, issued)
  }

  /** An admin revoked the user's access: the stored tokens go, and the server is told (best effort). */
  async revoke (principal: string): Promise<boolean> {
    const token = await this.identity.loadToken(this.upstream, principal)
    const removed = await this.identity.deleteToken(this.upstream, principal)
    if (token === undefined) return removed
    const server = await this.authorizationServer().catch(() => undefined)
    const endpoint = server?.revocationEndpoint
    if (server !== undefined && endpoint !== undefined) {
      const value = token.refreshToken ?? token.accessToken
      // Best effort, and after the fact: the stored tokens are gone whatever the server says.
      await this.clientAuth(server).then(async (client) => { await revokeToken(endpoint, client, value, token.refreshToken === undefined ? 'access_token' : 'refresh_token') }).catch(() => {})
    }
    return true
  }
}
