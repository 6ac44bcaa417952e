/**
 * The gateway's per-user upstream identities: each user's tokens for each `oauth` upstream, and
 * the sign-ins in progress, sealed (AES-256-GCM) in the token store (memory, or Redis for every
 * instance). A token is kept under its upstream and principal (which the seal binds it to), so one
 * user's token is never read for another. The OAuth callback, whichever instance it reaches,
 * finishes the sign-in its state names.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { GatewayErrors } from '../errors.ts'
import type { Sealer } from './sealed.ts'
import type { TokenStore } from './token-store.ts'
import type { ClientAuth, IssuedToken } from './token-endpoint.ts'
import type { Registration } from './registration.ts'

export interface IdentityOptions {
  store: TokenStore
  sealer: Sealer
  /** The public URL of the gateway's OAuth callback, as registered at each authorization server. */
  callbackUrl: string
  /** How long a sign-in may take, from the consent URL to the callback. */
  flowTtlMs: number
  /** How long a token with a refresh token is kept (one without: until it expires). */
  tokenTtlMs: number
}

/** A sign-in in progress. */
export interface Flow {
  upstream: string
  principal: string
  verifier: string
  elicitationId: string
  /** Where the user signs in: the upstream's authorization server, with this flow's state. */
  authorizationUrl: string
}

/**
 * What a client is sent to go and sign in: the gateway's own page for the sign-in (it names the
 * upstream and the principal the account will serve, then sends the browser on to the
 * authorization server), never the authorization server's URL itself.
 */
export interface ConsentPrompt {
  url: string
  elicitationId: string
}

/** The upstream's part of a sign-in: the authorization URL to send the user to, and the code's exchange. */
export interface SignInHandler {
  authorizationUrl (state: string, verifier: string): Promise<string>
  complete (flow: Flow, code: string): Promise<void>
  /** The user's tokens go (and the authorization server is told); false when there were none. */
  revoke (principal: string): Promise<boolean>
}

const part = (text: string): string => encodeURIComponent(text)
/** How long a dynamic registration is kept (servers that expire theirs sooner need `clientId` configured). */
const REGISTRATION_TTL_MS = 365 * 86_400_000
const tokenKey = (upstream: string, principal: string): string => `t:${part(upstream)}:${part(principal)}`
const pendingKey = (upstream: string, principal: string): string => `p:${part(upstream)}:${part(principal)}`
const flowKey = (state: string): string => `f:${state}`
const browserKey = (state: string): string => `b:${state}`
const fingerprint = (browser: string): string => createHash('sha256').update(browser).digest('base64url')
const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

export class UpstreamIdentity {
  readonly callbackUrl: string
  private readonly options: IdentityOptions
  private readonly handlers = new Map<string, SignInHandler>()

  constructor (options: IdentityOptions) {
    this.options = options
    this.callbackUrl = options.callbackUrl
  }

  /** An `oauth` upstream: the callback hands it the code of its users' sign-ins. */
  register (upstream: string, handler: SignInHandler): void {
    this.handlers.set(upstream, handler)
  }

  get upstreams (): string[] {
    return [...this.handlers.keys()]
  }

  async loadToken (upstream: string, principal: string): Promise<IssuedToken | undefined> {
    const key = tokenKey(upstream, principal)
    const sealed = await this.options.store.get(key)
    if (sealed === undefined) return undefined
    const plain = this.options.sealer.open(sealed, key)
    // Sealed under a retired key, or not for this key at all: as good as none (sign in again).
    if (plain === undefined) return undefined
    const token = JSON.parse(plain) as IssuedToken
    // Sealed under an older key that is still listed: sealed again under the current one, so the
    // old key can be dropped once every user has been seen (best effort: the read stands).
    if (this.options.sealer.stale(sealed)) await this.saveToken(upstream, principal, token).catch(() => {})
    return token
  }

  async saveToken (upstream: string, principal: string, token: IssuedToken): Promise<void> {
    const key = tokenKey(upstream, principal)
    const ttl = token.refreshToken === undefined ? token.expiresAt - Date.now() : this.options.tokenTtlMs
    if (ttl <= 0) return
    await this.options.store.set(key, this.options.sealer.seal(JSON.stringify(token), key), ttl)
  }

  async deleteToken (upstream: string, principal: string): Promise<boolean> {
    return await this.options.store.delete(tokenKey(upstream, principal))
  }

  /** Every principal holding a token for the upstream (at most `limit`), for the admin API. */
  async principals (upstream: string, limit: number): Promise<string[]> {
    const prefix = `t:${part(upstream)}:`
    return (await this.options.store.keys(prefix, limit)).map((key) => decodeURIComponent(key.slice(prefix.length)))
  }

  /**
   * The gateway's client at an authorization server it registered with dynamically: the one
   * every instance uses (the first registration stored wins; a code is bound to its client).
   * Kept under what it was registered for (callback, client authentication), until its secret
   * expires (a year at most); a record no key opens any more is replaced.
   */
  async registration (upstream: string, issuer: string, method: string, register: () => Promise<Registration>): Promise<ClientAuth> {
    const key = this.registrationKey(upstream, issuer, method)
    const { store, sealer } = this.options
    const read = async (): Promise<ClientAuth | undefined> => {
      const sealed = await store.get(key)
      const plain = sealed === undefined ? undefined : sealer.open(sealed, key)
      return plain === undefined ? undefined : JSON.parse(plain) as ClientAuth
    }
    const held = await read()
    if (held !== undefined) return held
    const { client, expiresAt } = await register()
    const ttl = Math.min(REGISTRATION_TTL_MS, (expiresAt ?? Number.POSITIVE_INFINITY) - Date.now())
    const sealed = sealer.seal(JSON.stringify(client), key)
    if (await store.setIfAbsent(key, sealed, ttl)) return client
    const winner = await read()
    if (winner !== undefined) return winner
    await store.set(key, sealed, ttl)
    return client
  }

  /** The server no longer knows the registered client (`invalid_client`): the next need registers anew. */
  async forgetRegistration (upstream: string, issuer: string, method: string): Promise<void> {
    await this.options.store.delete(this.registrationKey(upstream, issuer, method))
  }

  private registrationKey (upstream: string, issuer: string, method: string): string {
    const what = createHash('sha256').update(`${this.callbackUrl}\u0000${method}`).digest('base64url').slice(0, 16)
    return `r:${part(upstream)}:${part(issuer)}:${what}`
  }

  /** An admin revoked a user's access to an upstream: false when they held no token for it. */
  async revoke (upstream: string, principal: string): Promise<boolean> {
    const handler = this.handlers.get(upstream)
    return handler === undefined ? false : await handler.revoke(principal)
  }

  /**
   * The consent URL for a user with no token: the sign-in already in progress for them (the same
   * URL every time they ask meanwhile), else a new one.
   */
  prompt (upstream: string, principal: string): Promise<ConsentPrompt> {
    // One at a time per user and upstream on this instance: concurrent requests share one sign-in.
    const key = pendingKey(upstream, principal)
    let pending = this.prompting.get(key)
    if (pending === undefined) {
      pending = this.promptOnce(upstream, principal).finally(() => this.prompting.delete(key))
      this.prompting.set(key, pending)
    }
    return pending
  }

  private readonly prompting = new Map<string, Promise<ConsentPrompt>>()

  private async promptOnce (upstream: string, principal: string): Promise<ConsentPrompt> {
    const handler = this.handlers.get(upstream)
    if (handler === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, 'it has no per-user OAuth')
    const { store, sealer, flowTtlMs } = this.options
    const pointer = pendingKey(upstream, principal)
    const held = await store.get(pointer)
    const state = held === undefined ? undefined : sealer.open(held, pointer)
    if (state !== undefined) {
      const sealed = await store.get(flowKey(state))
      const flow = sealed === undefined ? undefined : sealer.open(sealed, flowKey(state))
      if (flow !== undefined) return { url: this.startUrl(state), elicitationId: (JSON.parse(flow) as Flow).elicitationId }
    }
    const fresh = randomBytes(32).toString('base64url')
    const verifier = randomBytes(32).toString('base64url')
    const authorizationUrl = await handler.authorizationUrl(fresh, verifier)
    const flow: Flow = { upstream, principal, verifier, elicitationId: randomUUID(), authorizationUrl }
    await store.set(flowKey(fresh), sealer.seal(JSON.stringify(flow), flowKey(fresh)), flowTtlMs)
    await store.set(pointer, sealer.seal(fresh, pointer), flowTtlMs)
    return { url: this.startUrl(fresh), elicitationId: flow.elicitationId }
  }

  /** The gateway's page for a sign-in: the callback's path, naming the flow. */
  private startUrl (state: string): string {
    const url = new URL(this.callbackUrl)
    url.searchParams.set('flow', state)
    return url.href
  }

  /** The sign-in a start page names, if it is still open (not used up: the page may be reloaded). */
  async flow (state: string): Promise<Flow | undefined> {
    const key = flowKey(state)
    const sealed = await this.options.store.get(key)
    const plain = sealed === undefined ? undefined : this.options.sealer.open(sealed, key)
    return plain === undefined ? undefined : JSON.parse(plain) as Flow
  }

  /**
   * The sign-in page's button was clicked in a browser holding `browser` (a cookie's random
   * value): only that browser may finish the sign-in. A link to the authorization server passed
   * on to someone else (whose account would then serve the sender) is refused at the callback.
   */
  async bind (state: string, browser: string): Promise<void> {
    await this.options.store.set(browserKey(state), fingerprint(browser), this.options.flowTtlMs)
  }

  /**
   * The authorization server sent the user back: the sign-in its state names is finished (once),
   * in the browser that started it. Without a code (the user refused), the sign-in is dropped.
   */
  async callback (state: string, code: string | undefined, browser: string | undefined): Promise<Flow> {
    const key = flowKey(state)
    const unknown = (): Error => new GatewayErrors.SIGN_IN_FAILED('this sign-in is unknown, used already or expired: start again from your client')
    if (await this.flow(state) === undefined) throw unknown()
    const bound = await this.options.store.get(browserKey(state))
    if (bound === undefined || browser === undefined || !same(bound, fingerprint(browser))) {
      throw new GatewayErrors.SIGN_IN_FAILED('this sign-in was started in another browser: open the link your client gave you, in this browser')
    }
    const sealed = await this.options.store.take(key)
    const plain = sealed === undefined ? undefined : this.options.sealer.open(sealed, key)
    if (plain === undefined) throw unknown()
    await this.options.store.delete(browserKey(state))
    const flow = JSON.parse(plain) as Flow
    if (code === undefined) {
      await this.options.store.delete(pendingKey(flow.upstream, flow.principal))
      return flow
    }
    const handler = this.handlers.get(flow.upstream)
    if (handler === undefined) throw new GatewayErrors.UPSTREAM_TOKEN(flow.upstream, 'it has no per-user OAuth any more')
    await handler.complete(flow, code)
    await this.options.store.delete(pendingKey(flow.upstream, flow.principal))
    return flow
  }
}
