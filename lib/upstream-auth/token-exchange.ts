/**
 * `tokenExchange` (RFC 8693): the caller's own inbound token is exchanged at the token endpoint
 * for one meant for the upstream (its audience, RFC 8707 resource), held per principal until it
 * (or the token it was exchanged from) expires. The client's token itself never leaves the
 * gateway for the upstream; only the token endpoint sees it. With `actor`, the gateway's own
 * client-credentials token goes along as the actor token (delegation: the upstream can see both).
 */
import { GatewayErrors } from '../errors.ts'
import type { ClientCredentials } from './client-credentials.ts'
import type { Caller, UpstreamCredentials } from './credentials.ts'
import { TokenCache } from './token-cache.ts'
import { requestToken, type ClientAuth, type IssuedToken } from './token-endpoint.ts'

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'

export interface TokenExchangeOptions {
  upstream: string
  tokenUrl: string
  client: ClientAuth
  resource?: string
  audience?: string
  scope?: string
  /** The gateway's own token, sent as `actor_token`. */
  actor?: ClientCredentials
  refreshBeforeMs: number
  maxPrincipals: number
}

export class TokenExchange implements UpstreamCredentials {
  readonly mode = 'tokenExchange'
  readonly perUser = true
  private readonly options: TokenExchangeOptions
  private readonly cache: TokenCache

  constructor (options: TokenExchangeOptions) {
    this.options = options
    this.cache = new TokenCache({ max: options.maxPrincipals, refreshBeforeMs: options.refreshBeforeMs })
  }

  authorization (caller: Caller | undefined): string | Promise<string> {
    const held = caller === undefined ? undefined : this.cache.peek(caller.id)
    if (held !== undefined) return `Bearer ${held}`
    // A session's own requests (its GET stream reopened) carry the principal but not its token.
    if (caller?.token === undefined) {
      return Promise.reject(new GatewayErrors.UPSTREAM_TOKEN(this.options.upstream, 'token exchange needs the caller\'s bearer token (inbound JWT auth)'))
    }
    return this.cache.get(caller.id, async () => await this.exchange(caller)).then((token) => `Bearer ${token}`)
  }

  private async exchange (caller: Caller): Promise<IssuedToken> {
    const { upstream, tokenUrl, client, resource, audience, scope, actor } = this.options
    const actorToken = actor === undefined ? undefined : await actor.token()
    const issued = await requestToken(upstream, tokenUrl, client, {
      grant_type: GRANT,
      subject_token: caller.token,
      subject_token_type: ACCESS_TOKEN,
      requested_token_type: ACCESS_TOKEN,
      resource,
      audience,
      scope,
      actor_token: actorToken,
      actor_token_type: actorToken === undefined ? undefined : ACCESS_TOKEN
    })
    // Held no longer than the token it stands for: a signed-out user's access ends with it.
    const subjectExpiry = caller.claims?.exp
    if (typeof subjectExpiry === 'number') issued.expiresAt = Math.min(issued.expiresAt, subjectExpiry * 1000)
    return issued
  }

  async rejected (caller: Caller | undefined, authorization: string, final: boolean): Promise<boolean> {
    if (caller !== undefined) this.cache.drop(caller.id, authorization.slice('Bearer '.length))
    return !final
  }
}
