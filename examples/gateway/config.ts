/**
 * The preset's configuration: one JSON object (from a file, flags and environment) that says how
 * to listen and what to proxy. Its type and the config file's JSON Schema (config.schema.json,
 * made by schema.ts) come from one schema: the preset's own fields here and every plugin's
 * section. At start this checks the preset's own fields; each plugin checks its section.
 */
import { readFile } from 'node:fs/promises'
import { gatewayShape } from '../../plugins/gateway-options.ts'
import { storeFileSchema, type StoreConfig } from '../../plugins/store-options.ts'
import { int, invalid, isPlainObject, nonEmptyString, optionalInteger, parseOptions, reportAs, z, type SectionInput } from '../../lib/options.ts'
import { DRAIN_MARGIN_MS, DRAIN_TIMEOUT_MS } from '../../plugins/streaming-options.ts'

export type { StoreConfig }

export const GATEWAY_DEFAULTS = { host: '127.0.0.1', port: 3000, logLevel: 'info', headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 } as const

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** The preset's own fields (how to listen, log and stop). */
const presetShape = {
  /** The file's JSON Schema, for editors; the gateway has no use for it. */
  $schema: z.string().optional(),
  /**
   * Interface to listen on. Loopback by default: binding wider exposes the gateway to the network.
   * @default '127.0.0.1'
   */
  host: nonEmptyString().default(GATEWAY_DEFAULTS.host).meta({ description: 'Interface to listen on. Loopback by default.' }),
  /** @default 3000 */
  port: int(0, 65535).default(GATEWAY_DEFAULTS.port),
  /**
   * The CLI's whole shutdown budget, from the signal to the exit: new requests refused, answers on
   * their way drained (`streaming.drainTimeoutMs` and `websocket.drainTimeoutMs`, together), leases
   * released and streams ended with `retry:` (`SHUTDOWN_MARGINS.streamsMs`), then upstreams and
   * children closed (`SHUTDOWN_MARGINS.closeMs`; a stdio child still running then is SIGKILLed,
   * whatever its `killGraceMs`). Past it the process is killed with exit code 1. A value too short
   * for the drains is refused. Fastify's `pluginTimeout` is raised to fit it.
   * @default the longest drain + 2000 ms + 3000 ms (15 s with the default 10 s drains)
   */
  shutdownTimeoutMs: int(1).optional().meta({ description: 'CLI: the signal-to-exit shutdown budget; a value too small for the drains is refused. Default: the drains + 5000 ms (15000 with the defaults).' }),
  /**
   * Log level for pino, or false for no logs.
   * @default 'info'
   */
  logLevel: z.union([z.enum(LOG_LEVELS), z.literal(false)], { error: `must be false or one of ${LOG_LEVELS.join(', ')}` }).default(GATEWAY_DEFAULTS.logLevel),
  /**
   * Serve HTTP/2: over TLS when `tls` is given (HTTP/1.1 clients still served, by ALPN), else
   * cleartext h2c (for a front proxy that speaks h2c; browsers do not).
   * @default false
   */
  http2: z.boolean().default(false).meta({ description: 'Serve HTTP/2 (h2c, or over TLS with HTTP/1.1 by ALPN when tls is given).' }),
  /** Serve HTTPS with this key and certificate (PEM file paths). */
  tls: reportAs(z.strictObject({
    key: z.string().meta({ description: 'PEM key file.' }),
    cert: z.string().meta({ description: 'PEM certificate file.' })
  }), 'must be { "key": "<PEM file>", "cert": "<PEM file>" }').optional(),
  /**
   * Longest a client may take to send a request's headers (slow-loris defence).
   * @default 10000 ms (or requestTimeoutMs, if shorter)
   */
  headersTimeoutMs: int(1).optional().meta({ description: 'Longest a client may take to send its request headers (slow-loris).', default: GATEWAY_DEFAULTS.headersTimeoutMs }),
  /**
   * Longest a client may take to send a whole request, body included (responses, SSE streams
   * among them, are not limited by this).
   * @default 30000 ms
   */
  requestTimeoutMs: int(1).default(GATEWAY_DEFAULTS.requestTimeoutMs).meta({ description: 'Longest a client may take to send a whole request.' })
}

/** The whole config: the preset's fields, then every plugin's section (a Redis store by `url`). */
export const gatewayConfigShape = {
  ...presetShape,
  ...gatewayShape,
  /**
   * Where sessions and the event log live: in this process (`memory`) or in Redis, shared by every
   * instance that names the same Redis and key prefix.
   * @default { type: 'memory' }
   */
  store: storeFileSchema.optional()
}

export type GatewayConfig = SectionInput<typeof gatewayConfigShape>

/** What the preset checks at start: its own fields; the other keys are the plugins' to check. */
const presetSchema = z.looseObject({ ...presetShape, store: storeFileSchema.optional() })

/**
 * What the shutdown needs besides the drains: `streamsMs` to stop upstream readers, release leases
 * and end every stream after its last logged event (Redis round trips); `closeMs` to close stores,
 * pools and stdio children (a child still running at its end is SIGKILLed).
 */
export const SHUTDOWN_MARGINS = { streamsMs: DRAIN_MARGIN_MS, closeMs: 3000 } as const

/** The default `streaming.drainTimeoutMs` and `websocket.drainTimeoutMs` of the preset. */
const DEFAULT_DRAIN_MS = DRAIN_TIMEOUT_MS

export interface ShutdownPlan {
  /** Signal to forced exit (exit code 1). */
  forcedExitMs: number
  /** Signal to SIGKILL of every stdio child still running (so the exit is 0 and leaves none). */
  killChildrenAtMs: number
  /** Fastify's `pluginTimeout`: no close hook may be cut short before the CLI's own deadline. */
  pluginTimeoutMs: number
}

function drainOf (at: string, section: unknown): number {
  if (!isPlainObject(section)) return DEFAULT_DRAIN_MS
  return optionalInteger(`${at}.drainTimeoutMs`, section.drainTimeoutMs, 0, DEFAULT_DRAIN_MS)
}

/**
 * One shutdown budget for a checked config: the drains run together (the `drain` phase of the
 * core plugin's `ShutdownSequence`), then the margins; `shutdownTimeoutMs`, when given, must hold
 * them.
 */
export function shutdownPlan (config: GatewayConfig): ShutdownPlan {
  const streaming = config.streaming === false ? 0 : drainOf('streaming', config.streaming)
  const websocket = config.websocket === undefined || config.websocket === false ? 0 : drainOf('websocket', config.websocket)
  const needed = Math.max(streaming, websocket) + SHUTDOWN_MARGINS.streamsMs
  const derived = needed + SHUTDOWN_MARGINS.closeMs
  const forcedExitMs = optionalInteger('shutdownTimeoutMs', config.shutdownTimeoutMs, 1, derived)
  // A second at least to close stores and children after the streams have ended.
  if (forcedExitMs < needed + 1000) {
    throw invalid('shutdownTimeoutMs', `${forcedExitMs} ms cannot hold the drains (streaming ${streaming} ms and websocket ${websocket} ms, run together) and ${SHUTDOWN_MARGINS.streamsMs + 1000} ms to end streams and close: give at least ${needed + 1000}, or lower the drainTimeoutMs options`)
  }
  return {
    forcedExitMs,
    killChildrenAtMs: forcedExitMs - Math.min(1000, SHUTDOWN_MARGINS.closeMs),
    pluginTimeoutMs: Math.max(10_000, forcedExitMs)
  }
}

export function checkGatewayConfig (value: unknown): GatewayConfig {
  if (!isPlainObject(value)) throw invalid('config', 'must be a JSON object')
  // Editors read `$schema` (config.schema.json); the gateway has no use for it.
  const { $schema: _schema, ...config } = parseOptions(presetSchema, '', value) as GatewayConfig & { headersTimeoutMs?: number, requestTimeoutMs: number }
  if (config.upstream === undefined && config.upstreams === undefined) throw invalid('upstream', 'is required (the upstream MCP endpoint URL, or "upstreams")')
  // Its default follows requestTimeoutMs: the headers cannot take longer than the whole request.
  config.headersTimeoutMs ??= Math.min(GATEWAY_DEFAULTS.headersTimeoutMs, config.requestTimeoutMs)
  if (config.headersTimeoutMs > config.requestTimeoutMs) throw invalid('headersTimeoutMs', 'must not be longer than requestTimeoutMs')
  shutdownPlan(config)
  return config
}

export async function readConfigFile (path: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw invalid('config', `cannot read ${path}: ${(err as Error).message}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw invalid('config', `${path} is not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(value)) throw invalid('config', `${path} must hold a JSON object`)
  return value
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

function expand (at: string, text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(REFERENCE, (_match, name: string) => {
    const value = env[name]
    if (value === undefined) throw invalid(at, `refers to \${${name}}, which is not set in the environment`)
    return value
  })
}

function expandRecord (at: string, value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (!isPlainObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) out[key] = typeof item === 'string' ? expand(`${at}.${key}`, item, env) : item
  return out
}

function expandUpstream (at: string, value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (!isPlainObject(value)) return value
  const out = { ...value }
  if (out.headers !== undefined) out.headers = expandRecord(`${at}.headers`, out.headers, env)
  if (out.env !== undefined) out.env = expandRecord(`${at}.env`, out.env, env)
  // Client secrets of the upstream's auth (and a static mode's headers).
  if (isPlainObject(out.auth)) {
    const auth = expandRecord(`${at}.auth`, out.auth, env) as Record<string, unknown>
    if (auth.headers !== undefined) auth.headers = expandRecord(`${at}.auth.headers`, auth.headers, env)
    out.auth = auth
  }
  if (Array.isArray(out.args)) out.args = out.args.map((arg: unknown, index) => typeof arg === 'string' ? expand(`${at}.args[${index}]`, arg, env) : arg)
  // A virtual server's members are upstreams too.
  if (out.kind === 'virtual' && Array.isArray(out.members)) {
    out.members = out.members.map((member: unknown, index) => isPlainObject(member)
      ? { ...member, upstream: expandUpstream(`${at}.members[${index}].upstream`, member.upstream, env) }
      : member)
  }
  return out
}

/**
 * Secrets stay out of config files: `${NAME}` in an upstream's `headers`, `env`, `args` and `auth` values (a
 * virtual server's members' too), in `auth.apiKeys.keys[].key` and in `identity.keys[]`, is replaced with the gateway's environment variable NAME (an unset one
 * refuses to start). The client never supplies them.
 */
export function expandEnvironment (config: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = { ...config }
  if (out.upstream !== undefined) out.upstream = expandUpstream('upstream', out.upstream, env)
  if (Array.isArray(out.upstreams)) out.upstreams = out.upstreams.map((entry: unknown, index) => expandUpstream(`upstreams[${index}]`, entry, env))
  const apiKeys = isPlainObject(out.auth) && isPlainObject(out.auth.apiKeys) ? out.auth.apiKeys : undefined
  if (apiKeys !== undefined && Array.isArray(apiKeys.keys)) {
    const keys = apiKeys.keys.map((entry: unknown, index) => isPlainObject(entry) && typeof entry.key === 'string'
      ? { ...entry, key: expand(`auth.apiKeys.keys[${index}].key`, entry.key, env) }
      : entry)
    out.auth = { ...(out.auth as Record<string, unknown>), apiKeys: { ...apiKeys, keys } }
  }
  // Token sealing keys: `${NAME}` only, in practice (the default reads MCP_GATEWAY_TOKEN_KEYS).
  if (isPlainObject(out.identity) && Array.isArray(out.identity.keys)) {
    out.identity = { ...out.identity, keys: out.identity.keys.map((key: unknown, index) => typeof key === 'string' ? expand(`identity.keys[${index}]`, key, env) : key) }
  }
  return out
}
