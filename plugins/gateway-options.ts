/**
 * The umbrella plugin's options: every plugin's section, composed from the plugins' own shapes, so
 * its type and its part of the config file's JSON Schema follow them. At register, each section
 * is checked by its own plugin (errors name the option as that plugin does); the umbrella checks
 * only what is its own: one upstream or several, and their paths.
 */
import { section, z, type SectionInput } from '../lib/options.ts'
import { endpointUpstreamSchema, namedUpstreamSchema } from '../lib/upstream/endpoint-options.ts'
import { adminShape } from './admin-options.ts'
import { tapesShape } from './tapes-options.ts'
import { auditShape } from './audit-options.ts'
import { identityShape } from './identity-options.ts'
import { authShape } from './auth-options.ts'
import { pinningShape } from './pinning-options.ts'
import { healthShape } from './health-options.ts'
import { interceptorsShape } from './interceptors-options.ts'
import { metricsShape } from './metrics-options.ts'
import { policyShape } from './policy-options.ts'
import { endpointShape } from './proxy-options.ts'
import { rateLimitShape } from './rate-limit-options.ts'
import { sessionsShape } from './sessions-options.ts'
import { storeSchema } from './store-options.ts'
import { streamingShape } from './streaming-options.ts'
import { tracingShape } from './tracing-options.ts'
import { websocketShape } from './websocket-options.ts'

/** A section that may also be `false` (left out) or `true` (on, with its defaults). */
const orFalse = <T extends z.ZodType>(schema: T) => z.union([z.literal(false), schema])
const orBoolean = <T extends z.ZodType>(schema: T) => z.union([z.boolean(), schema])

export const gatewayShape = {
  /** The one upstream, on `path` (default `/mcp`). Give this or `upstreams`. */
  upstream: endpointUpstreamSchema.optional(),
  /**
   * Several upstreams, each of any kind, each on its own path. The other endpoint options
   * (`bodyLimit`, `allowedOrigins`, `heartbeat`, `route`, ...) apply to every one of them.
   */
  upstreams: z.array(namedUpstreamSchema).min(1).optional(),
  ...endpointShape,
  /**
   * Where sessions and the event log live: `{ type: 'memory' }` (one process, no setup) or
   * `{ type: 'redis', url }` (shared by every instance on the same Redis and key prefix). A
   * `store` given to `sessions` or `streaming` takes precedence for that plugin.
   * @default { type: 'memory' }
   */
  store: storeSchema.optional(),
  /**
   * The gateway-wide interceptor chain (`fastify.mcpInterceptors`): declarative `rules`, then
   * `interceptors`, and the error policy.
   */
  interceptors: section(interceptorsShape).optional(),
  /**
   * Inbound auth on the MCP endpoints: `{ apiKeys }` or `{ jwt }`, scopes, protected resource
   * metadata and per-tool rules. Off by default (see SECURITY.md).
   */
  auth: section(authShape).optional(),
  /**
   * Per-user upstream identity: where users come back after signing in to an upstream whose
   * `auth.mode` is `oauth` (`callbackUrl`), and how their tokens are kept (sealed with keys from
   * `MCP_GATEWAY_TOKEN_KEYS`). Needed by `oauth` upstreams only (README "Upstream identity").
   */
  identity: section(identityShape).optional(),
  /**
   * CEL policy over who, which upstream, which tool and its arguments: `{ rules, default? }` or
   * `{ file }` (a policy file, reloaded when it changes). Off by default (README "Policy").
   */
  policy: section(policyShape).optional(),
  /**
   * The audit log: one record per tools/call, resources/read, prompts/get and policy denial, to a
   * hash-chained JSONL file (rotated by size) and/or the logger. Off by default (README "Audit log").
   */
  audit: section(auditShape).optional(),
  /**
   * Tool pinning: every tool's first definition is pinned; a changed (or, optionally, new) one is
   * served only once approved. Off by default (README "Tool pinning").
   */
  pinning: section(pinningShape).optional(),
  /**
   * Tapes: sessions recorded to JSONL files (every message both ways, with timing), chosen by
   * rules or from the admin API; `tape replay` serves one as an upstream. Off by default.
   */
  tapes: section(tapesShape).optional(),
  /**
   * The admin API and console at `path` (default `/admin`), with credentials of their own (admin
   * API keys, or JWTs with an admin scope): sessions, upstreams, calls held for approval, tool
   * pins, policy, audit, a live feed. Off by default (README "Admin API and console").
   */
  admin: section(adminShape).optional(),
  /** Rate limits on the MCP endpoints (per principal, or per IP without auth). Off by default. */
  rateLimit: section(rateLimitShape).optional(),
  /**
   * The WebSocket transport for clients at `<endpoint path>/ws` (subprotocol `mcp`): `true` or its
   * options. Off by default.
   */
  websocket: orBoolean(section(websocketShape)).optional(),
  /** Options of the sessions plugin. */
  sessions: section(sessionsShape).optional(),
  /** Options of the streaming plugin (resumable streams); `false` relays streams without a log. */
  streaming: orFalse(section(streamingShape)).optional(),
  /** Options of the health plugin (`/healthz`, `/readyz`); `false` leaves it out. */
  health: orFalse(section(healthShape)).optional(),
  /** Options of the metrics plugin (`/metrics`); `false` leaves it out. */
  metrics: orFalse(section(metricsShape)).optional(),
  /**
   * OpenTelemetry spans per MCP exchange, to the tracer provider the application registered.
   * Off by default (`true` or options to turn it on).
   */
  tracing: orBoolean(section(tracingShape)).optional()
}

export type McpGatewayOptions = SectionInput<typeof gatewayShape>

/** One of several upstreams, each on its own MCP endpoint. */
export type NamedUpstream = z.input<typeof namedUpstreamSchema>
