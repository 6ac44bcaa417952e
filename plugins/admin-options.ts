/**
 * The admin API's options: where it is served, and its own credentials (admin API keys and/or JWTs
 * carrying an admin scope), never the MCP endpoints'. One schema gives their type, the check that
 * runs once at register, and their part of the config file's JSON Schema.
 */
import { httpUrlString, int, invalid, nonEmptyString, parseOptions, pluginSchema, reportAs, z, type SectionInput } from '../lib/options.ts'

const adminKeySchema = reportAs(z.strictObject({
  /** The admin's name: what approvals, pins and audit records say decided. */
  name: nonEmptyString(),
  /** The key; in a config file, `${NAME}` reads the gateway's environment. */
  key: z.string().min(16)
}), 'must be { name, key } with a key of at least 16 characters')

export const adminShape = {
  /**
   * Where the admin API (`<path>/api/...`) and console (`<path>/`) are served.
   * @default '/admin'
   */
  path: z.string().regex(/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/, { error: 'must be a path like /admin' }).default('/admin').meta({ description: 'Where the admin API and console are served. Default: /admin.' }),
  /** Admin API keys (as `Authorization: Bearer <key>`). */
  apiKeys: z.array(adminKeySchema).optional().meta({ description: 'Admin API keys, as Authorization: Bearer <key>.' }),
  /** JWT bearer tokens that carry the admin scope. */
  jwt: z.strictObject({
    jwksUrl: httpUrlString().optional(),
    jwks: reportAs(z.looseObject({ keys: z.array(z.record(z.string(), z.unknown())) }), 'must be a JWK Set ({ "keys": [...] })').optional(),
    issuer: nonEmptyString('is required'),
    /** The admin API's own audience: a token minted for the MCP endpoints must not open it. */
    audience: nonEmptyString('is required (the admin API\'s resource URI)'),
    /** @default 'mcp:admin' */
    scope: nonEmptyString().default('mcp:admin'),
    algorithms: z.array(nonEmptyString()).optional(),
    clockToleranceSec: int(0).default(30)
  }).optional(),
  /**
   * Serve the console (a web page over this API) at the path.
   * @default true
   */
  console: z.boolean().default(true).meta({ description: 'Serve the admin console at the path. Default: true.' }),
  /**
   * Most clients of the live event feed at once.
   * @default 50
   */
  maxFeeds: int(1, 10_000).default(50).meta({ description: 'Most clients of the live event feed at once. Default: 50.' })
}

export const adminSchema = pluginSchema(adminShape)

export type McpAdminOptions = SectionInput<typeof adminShape>

export type CheckedAdminOptions = z.output<typeof adminSchema>

export function checkAdminOptions (options: McpAdminOptions): CheckedAdminOptions {
  const checked = parseOptions(adminSchema, 'admin', options)
  if ((checked.apiKeys ?? []).length === 0 && checked.jwt === undefined) throw invalid('admin', 'needs its own credentials: "apiKeys" or "jwt"')
  const jwt = checked.jwt
  if (jwt !== undefined && (jwt.jwksUrl === undefined) === (jwt.jwks === undefined)) throw invalid('admin.jwt', 'give exactly one of jwksUrl or jwks')
  const names = new Set<string>()
  for (const [index, { name }] of (checked.apiKeys ?? []).entries()) {
    if (names.has(name)) throw invalid(`admin.apiKeys[${index}].name`, `"${name}" is given twice`)
    names.add(name)
  }
  return checked
}
