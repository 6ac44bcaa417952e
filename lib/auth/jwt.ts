/**
 * JWT bearer tokens (the gateway as an OAuth 2.1 resource server), verified with `jose` against a
 * JWKS URL (fetched and cached by jose, refreshed when an unknown key id appears) or static keys:
 * signature, issuer, audience (the gateway's resource URI, so a token minted for another resource
 * is refused: no token passthrough, no confused deputy), expiry and not-before.
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { GatewayErrors } from '../errors.ts'
import type { Principal, Verifier } from './principal.ts'

export interface JwtOptions {
  /** The authorization server's JWKS endpoint. Give this or `jwks`. */
  jwksUrl?: string
  /** Static public keys (a JWK Set). */
  jwks?: JSONWebKeySet
  /** Required `iss`. */
  issuer: string
  /** Required `aud`: the gateway's resource URI. */
  audience: string
  /** Accepted signing algorithms. @default ['RS256', 'ES256', 'EdDSA', 'PS256'] */
  algorithms?: string[]
  /** Clock skew allowed for `exp` and `nbf`. @default 30 s */
  clockToleranceSec?: number
}

const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'PS256']

function scopesOf (payload: JWTPayload): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter((s) => s.length > 0)
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string')
  return []
}

export class JwtVerifier implements Verifier {
  private readonly keys: JWTVerifyGetKey
  private readonly options: JwtOptions

  constructor (options: JwtOptions) {
    this.options = options
    this.keys = options.jwksUrl !== undefined
      ? createRemoteJWKSet(new URL(options.jwksUrl))
      : createLocalJWKSet(options.jwks as JSONWebKeySet)
  }

  async verify (headers: Record<string, string | string[] | undefined>): Promise<Principal> {
    const value = headers.authorization
    if (typeof value !== 'string' || value.length === 0) throw new GatewayErrors.UNAUTHORIZED('a bearer token is required')
    const match = /^Bearer\s+(\S+)\s*$/i.exec(value)
    if (match === null) throw new GatewayErrors.UNAUTHORIZED('the Authorization header must be "Bearer <token>"')
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(match[1] as string, this.keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: this.options.algorithms ?? DEFAULT_ALGORITHMS,
        clockTolerance: this.options.clockToleranceSec ?? 30
      }))
    } catch (err) {
      throw new GatewayErrors.UNAUTHORIZED(describe(err), { cause: err })
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new GatewayErrors.UNAUTHORIZED('the token has no subject')
    const principal: Principal = { id: `${this.options.issuer}#${payload.sub}`, scopes: scopesOf(payload), method: 'jwt', claims: payload }
    // Not enumerable: a log line, JSON or a spread of the principal (interceptors see it) leaves it out.
    Object.defineProperty(principal, 'token', { value: match[1], enumerable: false })
    return principal
  }
}

/** What the client is told: enough to act on, nothing about keys. */
function describe (err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired'
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted`
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is not valid'
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID') return 'the token cannot be checked now'
  return 'the token is not valid'
}
