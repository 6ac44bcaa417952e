/**
 * The metrics plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import { invalid, nonEmptyString, parseOptions, pluginSchema, stringList, z, type SectionInput } from '../lib/options.ts'

export const metricsShape = {
  /**
   * Path serving the metrics.
   * @default '/metrics'
   */
  endpoint: nonEmptyString().default('/metrics').meta({ description: 'Path serving the metrics (not with a host-registered fastify-metrics).' }),
  /**
   * Tool names that may appear as a label of `mcp_gateway_tool_calls_total`; other tools count as
   * "other". Keep it short: every name is a time series per upstream.
   * @default []
   */
  toolNames: stringList().default([]).meta({ description: 'Tool names allowed as a label of mcp_gateway_tool_calls_total; others count as "other".' }),
  /**
   * Node.js process metrics (CPU, memory, event loop lag) from prom-client.
   * @default true
   */
  defaultMetrics: z.boolean().default(true).meta({ description: 'Node.js process metrics from prom-client.' }),
  /**
   * fastify-metrics' per-route HTTP request histograms (`http_request_duration_seconds`). Off by
   * default: they cost ~20 µs of CPU per request (measured: `npm run bench`), and the MCP series
   * (`mcp_gateway_refused_total` for error statuses) already cover the MCP endpoint.
   * @default false
   */
  routeMetrics: z.boolean().default(false).meta({ description: 'Per-route HTTP request histograms (about 20 µs of CPU per request).' })
}

export const metricsSchema = pluginSchema(metricsShape)

export type McpMetricsOptions = SectionInput<typeof metricsShape>

/** `hostMetrics`: the host registered fastify-metrics first, so its own options are its business. */
export function checkMetricsOptions (options: McpMetricsOptions, hostMetrics: boolean): z.output<typeof metricsSchema> {
  const checked = parseOptions(metricsSchema, '', options)
  if (hostMetrics) {
    for (const key of ['endpoint', 'defaultMetrics', 'routeMetrics'] as const) {
      if (options[key] !== undefined) throw invalid(key, 'belongs to the host\'s own fastify-metrics registration (it was registered before this plugin)')
    }
  }
  return checked
}
