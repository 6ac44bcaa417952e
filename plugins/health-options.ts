/**
 * The health plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import { int, nonEmptyString, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'

export const HEALTH_DEFAULTS = { livenessPath: '/healthz', readinessPath: '/readyz', timeoutMs: 2000 } as const

export const healthShape = {
  /** @default '/healthz' */
  livenessPath: nonEmptyString().default(HEALTH_DEFAULTS.livenessPath),
  /** @default '/readyz' */
  readinessPath: nonEmptyString().default(HEALTH_DEFAULTS.readinessPath),
  /**
   * How long each readiness check may take.
   * @default 2000
   */
  timeoutMs: int(1).default(HEALTH_DEFAULTS.timeoutMs).meta({ description: 'How long each readiness check may take.' })
}

export const healthSchema = pluginSchema(healthShape)

export type McpHealthOptions = SectionInput<typeof healthShape>

export function checkHealthOptions (options: McpHealthOptions): z.output<typeof healthSchema> {
  return parseOptions(healthSchema, 'health', options)
}
