/**
 * The auth plugin's options: one schema gives their type, their defaults, the check that runs once
 * at register and their part of the config file's JSON Schema. What one key alone cannot say
 * (`apiKeys` or `jwt`, `jwksUrl` or `jwks`) is checked in code after it.
 */
import type { JSONWebKeySet } from 'jose'
import type { ApiKey } from '../lib/auth/api-keys.ts'
import type { JwtOptions } from '../lib/auth/jwt.ts'
import type { ToolRule } from '../lib/auth/tool-rules.ts'
import { httpUrlString, int, invalid, nonEmptyString, parseOptions, pluginSchema, reportAs, z, type SectionInput } from '../lib/options.ts'

/** Strings that end up in a `WWW-Authenticate` header or a JSON document: no quotes, no line breaks. */
const headerSafeList = reportAs(z.array(z.string().regex(/^[^\r\n"]*$/)), 'must be an array of strings (no quotes or line breaks)')
const nonEmptyList = reportAs(z.array(nonEmptyString()).min(1), 'must be a non-empty array of strings')

const apiKeySchema = reportAs(z.strictObject({
  /** The principal's id (what sessions are bound to and rate limits count by). */
  name: nonEmptyString(),
  /** The key; in a config file, `${NAME}` reads the gateway's environment. */
  key: z.string().min(16),
  /** Scopes this key grants, for per-tool rules. @default [] */
  scopes: headerSafeList.default([])
}), 'must be { name, key } with a key of at least 16 characters')

export const authShape = {
  /** Static API keys. Give this or `jwt`. */
  apiKeys: z.strictObject({
    /** Keys given here (use `${ENV}` references in a config file). */
    keys: z.array(apiKeySchema).default([]),
    /** A file of keys, one `name:key[:scopes]` per line. */
    keysFile: z.string().optional().meta({ description: 'A file of keys, one name:key[:scopes] per line.' }),
    /** @default 'authorization' (as `Bearer <key>`) */
    header: z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'must be a header name' }).default('authorization')
      .meta({ description: 'Header carrying the key: authorization takes Bearer <key>, any other the key alone.' })
  }).optional(),
  /** JWT bearer tokens, checked against the authorization server's keys. */
  jwt: z.strictObject({
    /** The authorization server's JWKS endpoint. Give this or `jwks`. */
    jwksUrl: httpUrlString().optional(),
    /** Static public keys (a JWK Set). */
    jwks: reportAs(z.looseObject({ keys: z.array(z.record(z.string(), z.unknown())) }), 'must be a JWK Set ({ "keys": [...] })').optional(),
    /** Required `iss`. */
    issuer: nonEmptyString('is required'),
    /** Required `aud`: the gateway's resource URI. */
    audience: nonEmptyString('is required (the gateway\'s resource URI)').meta({ description: 'The gateway\'s resource URI.' }),
    /** Accepted signing algorithms. @default ['RS256', 'ES256', 'EdDSA', 'PS256'] */
    algorithms: z.array(nonEmptyString()).optional(),
    /** Clock skew allowed for `exp` and `nbf`. @default 30 s */
    clockToleranceSec: int(0).default(30)
  }).optional(),
  /** Scopes every request needs; a token without them gets 403 naming them. @default [] */
  requiredScopes: headerSafeList.default([]),
  /**
   * RFC 9728 protected resource metadata, served at `/.well-known/oauth-protected-resource`
   * (and under the resource's path), and named in every 401's `WWW-Authenticate`.
   */
  metadata: z.strictObject({
    /** The gateway's resource URI (what tokens must be minted for). @default jwt.audience */
    resource: httpUrlString().optional(),
    authorizationServers: headerSafeList.default([]),
    scopesSupported: headerSafeList.default([]),
    resourceName: z.string().optional()
  }).prefault({}),
  /**
   * Which tools each principal may see and call. Without rules every authenticated principal may
   * use every tool; with rules, only what some rule grants.
   */
  tools: z.array(z.strictObject({
    /** Principal id globs (`*` any run). Absent: any principal. */
    principals: nonEmptyList.optional(),
    /** The rule applies when the principal holds any of these scopes. Absent: no scope needed. */
    scopes: nonEmptyList.optional(),
    /** Upstream names the rule covers. Absent: every upstream. */
    upstreams: nonEmptyList.optional(),
    /** Tool name globs granted. */
    tools: nonEmptyList
  }, { error: 'must be { principals?, scopes?, upstreams?, tools }' }), { error: 'must be an array of rules' }).default([])
}

export const authSchema = pluginSchema(authShape)

export type McpAuthOptions = SectionInput<typeof authShape>

type Checked = z.output<typeof authSchema>

export interface CheckedAuthOptions extends Pick<Checked, 'requiredScopes' | 'metadata'> {
  apiKeys: { keys: ApiKey[], keysFile?: string | undefined, header: string } | undefined
  jwt: JwtOptions | undefined
  tools: ToolRule[]
}

export function checkAuthOptions (options: McpAuthOptions): CheckedAuthOptions {
  const { apiKeys, jwt, requiredScopes, metadata, tools } = parseOptions(authSchema, 'auth', options)
  if ((apiKeys === undefined) === (jwt === undefined)) throw invalid('auth', 'give exactly one of apiKeys or jwt')
  if (jwt !== undefined && (jwt.jwksUrl === undefined) === (jwt.jwks === undefined)) throw invalid('auth.jwt', 'give exactly one of jwksUrl or jwks')
  return { apiKeys, jwt: jwt === undefined ? undefined : { ...jwt, jwks: jwt.jwks as JSONWebKeySet | undefined }, requiredScopes, metadata, tools }
}
