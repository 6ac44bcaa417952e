/**
 * An HTTP upstream's `auth`: how the gateway proves itself (or its user) to the upstream. One
 * schema per mode; see the README's "Upstream identity" for what the upstream sees in each.
 */
import { headerRecord, httpUrl, int, nonEmptyString, z } from '../options.ts'

export const AUTH_DEFAULTS = {
  refreshBeforeMs: 30_000,
  clientAuthMethod: 'client_secret_basic',
  maxPrincipals: 10_000
} as const

const clientShape = {
  /** The gateway's client id at the authorization server. */
  clientId: nonEmptyString().meta({ description: 'The gateway\'s client id at the authorization server.' }),
  /** Its secret (`${NAME}` in a config file reads the gateway's environment). */
  clientSecret: nonEmptyString().meta({ description: 'The gateway\'s client secret; `${NAME}` reads the environment.' }),
  /** How the client authenticates to the token endpoint. @default 'client_secret_basic' */
  clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post'], { error: 'must be "client_secret_basic" or "client_secret_post"' })
    .default(AUTH_DEFAULTS.clientAuthMethod).meta({ description: 'Client authentication at the token endpoint.' }),
  /** Scopes asked for (space-separated). @default none */
  scope: z.string().optional().meta({ description: 'Scopes asked for, space-separated.' }),
  /**
   * A token this close to its expiry is replaced before it is sent (clock skew, and the time the
   * request takes). @default 30000 ms
   */
  refreshBeforeMs: int(0).default(AUTH_DEFAULTS.refreshBeforeMs).meta({ description: 'A token this close to expiry is replaced before use.' })
}

/** RFC 8707 resource indicator: the upstream's resource URI. @default the upstream's `url` (`oauth`: its metadata's `resource`) */
const resource = httpUrl().optional().meta({ description: 'RFC 8707 resource indicator (default: the upstream\'s url).' })
/** For token endpoints that name the target with RFC 8693's `audience` instead. */
const audience = nonEmptyString().optional().meta({ description: 'RFC 8693 audience parameter, for endpoints that take it.' })
const tokenUrl = httpUrl().meta({ description: 'The authorization server\'s token endpoint.' })

export const staticAuthSchema = z.strictObject({
  mode: z.literal('static'),
  /** Headers sent with every request (merged over the upstream's `headers`). */
  headers: headerRecord().default({})
}).meta({ id: 'staticAuth', description: 'Fixed headers from the gateway\'s configuration.' })

export const clientCredentialsSchema = z.strictObject({
  mode: z.literal('clientCredentials'),
  tokenUrl,
  ...clientShape,
  resource,
  audience
}).meta({ id: 'clientCredentialsAuth', description: 'The gateway\'s own identity: an OAuth 2.1 client credentials token, cached until shortly before expiry.' })

export const tokenExchangeSchema = z.strictObject({
  mode: z.literal('tokenExchange'),
  tokenUrl,
  ...clientShape,
  resource,
  audience,
  /** Send the gateway's own client-credentials token as the actor token. @default false */
  actor: z.boolean().default(false).meta({ description: 'Send the gateway\'s own client-credentials token as actor_token.' }),
  /** Most principals whose exchanged tokens are held at once. @default 10000 */
  maxPrincipals: int(1).default(AUTH_DEFAULTS.maxPrincipals).meta({ description: 'Most principals whose exchanged tokens are held.' })
}).meta({ id: 'tokenExchangeAuth', description: 'RFC 8693: the caller\'s token exchanged for one whose audience is the upstream, cached per principal.' })

export const oauthSchema = z.strictObject({
  mode: z.literal('oauth'),
  ...clientShape,
  /**
   * The gateway's client id at the upstream's authorization server. Without it (and its
   * secret), the gateway registers itself there (RFC 7591 dynamic registration), once for every
   * instance, when the server offers it.
   * @default registered dynamically
   */
  clientId: nonEmptyString().optional().meta({ description: 'The gateway\'s client id; without it (and clientSecret) the gateway registers itself (RFC 7591) where the server offers it.' }),
  clientSecret: nonEmptyString().optional().meta({ description: 'The gateway\'s client secret (with clientId); `${NAME}` reads the environment.' }),
  resource,
  /**
   * The authorization server's issuer, when the upstream publishes no RFC 9728 metadata naming
   * it. @default discovered from the upstream
   */
  authorizationServer: httpUrl().optional().meta({ description: 'The authorization server\'s issuer (default: discovered from the upstream\'s RFC 9728 metadata).' })
}).meta({ id: 'oauthAuth', description: 'Per-user OAuth: each user signs in to the upstream once (authorization code with PKCE); the gateway keeps their tokens, encrypted.' })

export const upstreamAuthSchema = z.discriminatedUnion('mode', [staticAuthSchema, clientCredentialsSchema, tokenExchangeSchema, oauthSchema], {
  error: 'must be an object whose mode is "static", "clientCredentials", "tokenExchange" or "oauth"'
}).meta({ description: 'How the gateway authenticates to this upstream (default: its headers only).' })

export type UpstreamAuth = z.output<typeof upstreamAuthSchema>
export type UpstreamAuthInput = z.input<typeof upstreamAuthSchema>
export type OAuthAuth = z.output<typeof oauthSchema>

/** Modes that act for the caller: they need inbound auth, and a principal on every request. */
export function isPerUser (auth: UpstreamAuth | undefined): boolean {
  return auth?.mode === 'tokenExchange' || auth?.mode === 'oauth'
}
