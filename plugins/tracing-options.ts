/**
 * The tracing plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import { nonEmptyString, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'

export const tracingShape = {
  /**
   * Name of the tracer (instrumentation scope).
   * @default 'fastify-mcp-gateway'
   */
  tracerName: nonEmptyString().default('fastify-mcp-gateway').meta({ description: 'Name of the tracer (instrumentation scope).' })
}

export const tracingSchema = pluginSchema(tracingShape)

export type McpTracingOptions = SectionInput<typeof tracingShape>

export function checkTracingOptions (options: McpTracingOptions): z.output<typeof tracingSchema> {
  return parseOptions(tracingSchema, '', options)
}
