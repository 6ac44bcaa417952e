/**
 * The rate-limit plugin's options: one schema gives their type, their defaults, the check that
 * runs once at register and their part of the config file's JSON Schema.
 */
import { int, invalid, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'

export const rateLimitShape = {
  /** Requests allowed per key in each window. */
  max: int(1).meta({ description: 'Requests allowed per key in each window.' }),
  /** The window, in milliseconds. @default 60000 */
  timeWindowMs: int(1).default(60_000).meta({ description: 'The window.' }),
  /**
   * What a budget belongs to: `principal` (needs the auth plugin) or `ip`.
   * @default 'principal' when auth is on, else 'ip'
   */
  keyBy: z.enum(['principal', 'ip']).optional().meta({ description: 'What a budget belongs to. Default: principal when auth is on, else ip.' })
}

export const rateLimitSchema = pluginSchema(rateLimitShape)

export type McpRateLimitOptions = SectionInput<typeof rateLimitShape>

/** `auth`: the auth plugin is registered (a budget may then belong to a principal). */
export function checkRateLimitOptions (options: McpRateLimitOptions, auth: boolean): { max: number, timeWindowMs: number, keyBy: 'principal' | 'ip' } {
  const { max, timeWindowMs, keyBy = auth ? 'principal' : 'ip' } = parseOptions(rateLimitSchema, 'rateLimit', options)
  if (keyBy === 'principal' && !auth) throw invalid('rateLimit.keyBy', '"principal" needs the auth plugin registered first')
  return { max, timeWindowMs, keyBy }
}
