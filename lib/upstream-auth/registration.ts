/**
 * RFC 7591 dynamic client registration: the gateway registers itself at an upstream's
 * authorization server as a confidential client for the authorization code flow, with its
 * callback as the one redirect URI, when no `clientId` is configured and the server offers it.
 */
import { request } from 'undici'
import { GatewayErrors } from '../errors.ts'
import { readBounded } from '../relay/body.ts'
import type { ClientAuth } from './token-endpoint.ts'

const REGISTRATION_TIMEOUT_MS = 10_000
const MAX_ANSWER_BYTES = 64 * 1024

/** A registered client, and until when the server keeps its secret (epoch ms; none: no expiry given). */
export interface Registration {
  client: ClientAuth
  expiresAt: number | undefined
}

export async function registerClient (upstream: string, endpoint: string, callbackUrl: string, method: ClientAuth['method'], scope: string | undefined): Promise<Registration> {
  const metadata = {
    client_name: 'fastify-mcp-gateway',
    redirect_uris: [callbackUrl],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: method,
    ...(scope === undefined ? {} : { scope })
  }
  let status: number
  let answer: Record<string, unknown>
  try {
    const res = await request(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(metadata), signal: AbortSignal.timeout(REGISTRATION_TIMEOUT_MS) })
    status = res.statusCode
    answer = JSON.parse((await readBounded(res.body, MAX_ANSWER_BYTES)).toString('utf8')) as Record<string, unknown>
  } catch (err) {
    throw new GatewayErrors.UPSTREAM_TOKEN(upstream, 'its registration endpoint cannot be reached, or answered no JSON', { cause: err })
  }
  if (status !== 201 && status !== 200) throw new GatewayErrors.UPSTREAM_TOKEN(upstream, `its registration endpoint answered HTTP ${status}${typeof answer.error === 'string' ? ` (${answer.error})` : ''}: give auth.clientId and auth.clientSecret`)
  if (typeof answer.client_id !== 'string' || typeof answer.client_secret !== 'string') throw new GatewayErrors.UPSTREAM_TOKEN(upstream, 'its registration endpoint gave no client_id and client_secret')
  // RFC 7591: 0 means the secret does not expire.
  const expires = typeof answer.client_secret_expires_at === 'number' && answer.client_secret_expires_at > 0 ? answer.client_secret_expires_at * 1000 : undefined
  return { client: { clientId: answer.client_id, clientSecret: answer.client_secret, method }, expiresAt: expires }
}
