/**
 * Who may use the admin API: its own API keys (compared as digests, in constant time) and/or JWTs
 * carrying the admin scope, for the admin API's own audience. The MCP endpoints' credentials are
 * a different set: the admin plugin refuses to start when an admin key also opens an endpoint.
 */
import type { JSONWebKeySet } from 'jose'
import { ApiKeyVerifier } from '../auth/api-keys.ts'
import { JwtVerifier } from '../auth/jwt.ts'
import { GatewayErrors } from '../errors.ts'

export interface AdminAuthOptions {
  apiKeys: Array<{ name: string, key: string }> | undefined
  jwt: {
    jwksUrl?: string | undefined
    jwks?: Record<string, unknown> | undefined
    issuer: string
    audience: string
    scope: string
    algorithms?: string[] | undefined
    clockToleranceSec: number
  } | undefined
}

type Headers = Record<string, string | string[] | undefined>

export class AdminAuth {
  private readonly keys: ApiKeyVerifier | undefined
  private readonly jwt: JwtVerifier | undefined
  private readonly scope: string | undefined

  constructor (options: AdminAuthOptions) {
    this.keys = options.apiKeys === undefined || options.apiKeys.length === 0 ? undefined : new ApiKeyVerifier({ keys: options.apiKeys })
    const jwt = options.jwt
    if (jwt !== undefined) {
      this.jwt = new JwtVerifier({ jwksUrl: jwt.jwksUrl, jwks: jwt.jwks as JSONWebKeySet | undefined, issuer: jwt.issuer, audience: jwt.audience, algorithms: jwt.algorithms, clockToleranceSec: jwt.clockToleranceSec })
      this.scope = jwt.scope
    }
  }

  /** The admin's name, or the 401/403 error. */
  async verify (headers: Headers): Promise<string> {
    let failure: unknown
    if (this.keys !== undefined) {
      try {
        return (await this.keys.verify(headers)).id
      } catch (err) {
        failure = err
      }
    }
    if (this.jwt !== undefined) {
      const principal = await this.jwt.verify(headers)
      if (!principal.scopes.includes(this.scope as string)) throw new GatewayErrors.INSUFFICIENT_SCOPE(this.scope as string)
      return principal.id
    }
    throw failure ?? new GatewayErrors.UNAUTHORIZED('admin credentials are required')
  }
}
