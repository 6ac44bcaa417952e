/**
 * `clientCredentials`: the gateway's own identity at the upstream (OAuth 2.1 client credentials
 * grant), the same token for every caller, held until shortly before it expires.
 */
import { TokenCache } from './token-cache.ts'
import { requestToken, type ClientAuth } from './token-endpoint.ts'
import type { UpstreamCredentials } from './credentials.ts'

export interface ClientCredentialsOptions {
  upstream: string
  tokenUrl: string
  client: ClientAuth
  scope?: string
  /** RFC 8707 resource indicator: the upstream's resource URI. */
  resource?: string
  /** For token endpoints that name the audience instead (`audience` parameter). */
  audience?: string
  refreshBeforeMs: number
}

const KEY = 'gateway'

export class ClientCredentials implements UpstreamCredentials {
  readonly mode = 'clientCredentials'
  readonly perUser = false
  private readonly options: ClientCredentialsOptions
  private readonly cache: TokenCache

  constructor (options: ClientCredentialsOptions) {
    this.options = options
    this.cache = new TokenCache({ max: 1, refreshBeforeMs: options.refreshBeforeMs })
  }

  authorization (): string | Promise<string> {
    const held = this.cache.peek(KEY)
    if (held !== undefined) return `Bearer ${held}`
    return this.token().then((token) => `Bearer ${token}`)
  }

  /** The gateway's own access token (also the actor token of a token exchange). */
  token (): Promise<string> {
    const { upstream, tokenUrl, client, scope, resource, audience } = this.options
    return this.cache.get(KEY, async () => await requestToken(upstream, tokenUrl, client, { grant_type: 'client_credentials', scope, resource, audience }))
  }

  async rejected (_caller: unknown, authorization: string, final: boolean): Promise<boolean> {
    this.cache.drop(KEY, authorization.slice('Bearer '.length))
    return !final
  }
}
