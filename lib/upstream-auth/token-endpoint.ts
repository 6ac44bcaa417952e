/**
 * One OAuth 2.1 token request (client credentials, RFC 8693 token exchange, authorization code,
 * refresh): a form POST to the token endpoint with the gateway's client authentication, the JSON
 * answer read into a token with an absolute expiry. Failures come out as the gateway's coded
 * `UPSTREAM_TOKEN` error naming the endpoint's OAuth error code, never its body.
 */
import { request } from 'undici'
import { GatewayErrors } from '../errors.ts'
import { drain, readBounded } from '../relay/body.ts'

/** How the gateway authenticates to a token endpoint (a confidential client). */
export interface ClientAuth {
  clientId: string
  clientSecret: string
  /** RFC 6749 section 2.3.1: HTTP Basic (the default), or the two form fields. */
  method: 'client_secret_basic' | 'client_secret_post'
}

export interface IssuedToken {
  accessToken: string
  /** Epoch milliseconds. */
  expiresAt: number
  refreshToken?: string
  scope?: string
}

/** A token endpoint answering with no `expires_in` (RFC 6749 makes it optional): kept this long. */
export const DEFAULT_TOKEN_LIFETIME_MS = 300_000
const TOKEN_TIMEOUT_MS = 10_000
const MAX_ANSWER_BYTES = 64 * 1024

/** RFC 6749 section 2.3.1: id and secret form-encoded before they are joined for Basic. */
function basic (client: ClientAuth): string {
  const encode = (value: string): string => encodeURIComponent(value).replace(/%20/g, '+')
  return `Basic ${Buffer.from(`${encode(client.clientId)}:${encode(client.clientSecret)}`).toString('base64')}`
}

export class TokenEndpointError extends GatewayErrors.UPSTREAM_TOKEN {
  /** The endpoint's OAuth error code (`invalid_grant` for a refresh token gone bad), if it gave one. */
  readonly oauthError: string | undefined
  constructor (upstream: string, reason: string, oauthError?: string, options?: { cause?: unknown }) {
    super(upstream, reason, options)
    this.oauthError = oauthError
  }
}

/** A form for one of the server's endpoints, the client's authentication in it or in its headers. */
function authenticated (client: ClientAuth, params: Record<string, string | undefined>): { form: URLSearchParams, headers: Record<string, string> } {
  const form = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) form.set(name, value)
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }
  if (client.method === 'client_secret_basic') {
    headers.authorization = basic(client)
  } else {
    form.set('client_id', client.clientId)
    form.set('client_secret', client.clientSecret)
  }
  return { form, headers }
}

export async function requestToken (upstream: string, url: string, client: ClientAuth, params: Record<string, string | undefined>, now = Date.now): Promise<IssuedToken> {
  const { form, headers } = authenticated(client, params)
  let status: number
  let body: unknown
  try {
    const res = await request(url, { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) })
    status = res.statusCode
    body = JSON.parse((await readBounded(res.body, MAX_ANSWER_BYTES)).toString('utf8'))
  } catch (err) {
    // Its body (or a parse error quoting it) is never part of the message: it may hold a token.
    throw new TokenEndpointError(upstream, 'its token endpoint cannot be reached, or answered no JSON', undefined, { cause: err })
  }
  const answer = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  if (status !== 200) {
    const code = typeof answer.error === 'string' ? answer.error : undefined
    throw new TokenEndpointError(upstream, `its token endpoint answered HTTP ${status}${code === undefined ? '' : ` (${code})`}`, code)
  }
  if (typeof answer.access_token !== 'string' || answer.access_token.length === 0) throw new TokenEndpointError(upstream, 'its token endpoint answered without an access_token')
  if (typeof answer.token_type === 'string' && answer.token_type.toLowerCase() !== 'bearer') throw new TokenEndpointError(upstream, `its token endpoint issued a ${answer.token_type} token; only Bearer tokens are sent`)
  const lifetime = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in * 1000 : DEFAULT_TOKEN_LIFETIME_MS
  const token: IssuedToken = { accessToken: answer.access_token, expiresAt: now() + lifetime }
  if (typeof answer.refresh_token === 'string') token.refreshToken = answer.refresh_token
  if (typeof answer.scope === 'string') token.scope = answer.scope
  return token
}

/** RFC 7009: tells the authorization server a token is no longer wanted (its answer is not read). */
export async function revokeToken (url: string, client: ClientAuth, token: string, hint: 'access_token' | 'refresh_token'): Promise<void> {
  const { form, headers } = authenticated(client, { token, token_type_hint: hint })
  const res = await request(url, { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) })
  drain(res.body)
}
