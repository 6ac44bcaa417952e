/**
 * The identity plugin's options: where users come back after signing in to an `oauth` upstream,
 * the keys their tokens are sealed with, and how long sign-ins and tokens are kept. One schema
 * gives their type, the check at register and their part of the config file's JSON Schema.
 */
import { httpUrl, int, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'

export const IDENTITY_DEFAULTS = {
  flowTtlMs: 600_000,
  tokenTtlMs: 30 * 86_400_000
} as const

export const identityShape = {
  /**
   * The public URL of the gateway's OAuth callback, as registered at each upstream's authorization
   * server (its path is served here), e.g. `https://gateway.example.com/oauth/callback`.
   */
  callbackUrl: httpUrl().meta({ description: 'Public URL of the gateway\'s OAuth callback, as registered at the authorization servers; its path is served.' }),
  /**
   * Keys sealing stored tokens (AES-256-GCM), each 32 random bytes in base64: the first seals, all
   * open (rotation). Keep them out of config files (`${NAME}` there reads the environment); by
   * default `MCP_GATEWAY_TOKEN_KEYS`, comma-separated.
   * @default from the environment
   */
  keys: z.array(z.string()).optional().meta({ description: 'Sealing keys (32 bytes, base64), the sealing one first; `${NAME}` reads the environment. Default: MCP_GATEWAY_TOKEN_KEYS (comma-separated).' }),
  /** Longest a sign-in may take, from the consent URL to the callback. @default 600000 ms */
  flowTtlMs: int(1000).default(IDENTITY_DEFAULTS.flowTtlMs).meta({ description: 'Longest a sign-in may take. Default: 10 min.' }),
  /** How long a user's tokens are kept when they include a refresh token. @default 30 days */
  tokenTtlMs: int(60_000).default(IDENTITY_DEFAULTS.tokenTtlMs).meta({ description: 'How long tokens with a refresh token are kept. Default: 30 days.' })
}

export const identitySchema = pluginSchema(identityShape)

export type McpIdentityOptions = SectionInput<typeof identityShape>

export function checkIdentityOptions (options: McpIdentityOptions): z.output<typeof identitySchema> {
  return parseOptions(identitySchema, 'identity', options)
}
