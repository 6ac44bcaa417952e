/** An HTTP upstream's `auth` as the credentials its requests carry, checked against what the gateway has. */
import { invalid } from '../options.ts'
import { ClientCredentials } from './client-credentials.ts'
import type { UpstreamCredentials } from './credentials.ts'
import type { UpstreamIdentity } from './identity.ts'
import { isPerUser, type UpstreamAuth } from './options.ts'
import { TokenExchange } from './token-exchange.ts'
import { UserOAuth } from './user-oauth.ts'

/** What per-user modes need of the gateway around the upstream; none for a virtual server's members. */
export interface AuthContext {
  /** How inbound requests are authenticated (the auth plugin's methods); none when it is off. */
  inbound: ReadonlyArray<'api-key' | 'jwt'>
  /** Per-user tokens and sign-ins (the identity plugin), for `oauth` upstreams. */
  identity: UpstreamIdentity | undefined
}

export interface AuthTarget {
  name: string
  url: string
  protocol?: string | undefined
  auth?: UpstreamAuth | undefined
}

export function createCredentials (upstream: AuthTarget, context: AuthContext | undefined): UpstreamCredentials | undefined {
  const auth = upstream.auth
  if (auth === undefined || auth.mode === 'static') return undefined
  const at = `upstream "${upstream.name}" auth`
  if (isPerUser(auth)) {
    if (context === undefined) throw invalid(at, `mode "${auth.mode}" acts for each user, and a virtual server's members are shared by its session: use "clientCredentials" or "static" there`)
    if (context.inbound.length === 0) throw invalid(at, `mode "${auth.mode}" acts for the caller: it needs inbound auth (the "auth" section)`)
    if (upstream.protocol === undefined || upstream.protocol === 'auto') throw invalid(at, `mode "${auth.mode}" needs "protocol": "2025" or "2026" on the upstream (its era cannot be asked without a user)`)
  }
  if (auth.mode === 'oauth') {
    const identity = context?.identity
    if ((auth.clientId === undefined) !== (auth.clientSecret === undefined)) throw invalid(`${at}.clientId`, 'give clientId and clientSecret together, or neither (dynamic registration)')
    if (identity === undefined) throw invalid(at, 'mode "oauth" needs the identity plugin (mcp-gateway-identity): give the gateway an "identity" section with its callbackUrl')
    return new UserOAuth(upstream.name, upstream.url, auth, identity)
  }
  const client = { clientId: auth.clientId, clientSecret: auth.clientSecret, method: auth.clientAuthMethod }
  const common = { upstream: upstream.name, client, refreshBeforeMs: auth.refreshBeforeMs }
  if (auth.mode === 'clientCredentials') {
    return new ClientCredentials({ ...common, tokenUrl: auth.tokenUrl, scope: auth.scope, resource: auth.resource ?? upstream.url, audience: auth.audience })
  }
  if (!(context as AuthContext).inbound.includes('jwt')) throw invalid(at, 'mode "tokenExchange" exchanges the caller\'s bearer token: it needs inbound JWT auth (auth.jwt)')
  const actor = auth.actor ? new ClientCredentials({ ...common, tokenUrl: auth.tokenUrl, resource: auth.resource ?? upstream.url }) : undefined
  return new TokenExchange({ ...common, tokenUrl: auth.tokenUrl, scope: auth.scope, resource: auth.resource ?? upstream.url, audience: auth.audience, actor, maxPrincipals: auth.maxPrincipals })
}
