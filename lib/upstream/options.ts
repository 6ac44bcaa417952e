/**
 * An upstream's options, whatever its kind: one schema per kind gives the type users write, the
 * defaults, the check at register and the config file's JSON Schema (`definitions` by kind).
 */
import { headerRecord, httpUrl, int, isPlainObject, nonEmptyString, parseOptions, stringList, z } from '../options.ts'
import { CHANNEL_DEFAULTS } from './channel-upstream.ts'
import type { UpstreamConfig, UpstreamOptions } from './create.ts'
import { STDIO_DEFAULTS } from './stdio.ts'
import { STDIO_LIFECYCLE_DEFAULTS } from './stdio-pool.ts'
import { UPSTREAM_DEFAULTS } from './streamable-http.ts'
import { TIMEOUT_DEFAULTS, type CheckedTimeouts } from '../deadline.ts'
import { upstreamAuthSchema } from '../upstream-auth/options.ts'

/** Request timeouts, every kind. */
export const timeoutShape = {
  /**
   * Longest wait for a request's answer with no progress from the upstream; each progress
   * notification for the request restarts it. 0 turns request timeouts off.
   * @default 300000 ms
   */
  requestTimeout: int(0).default(TIMEOUT_DEFAULTS.requestTimeout).meta({ description: 'Longest wait for an answer with no progress; each progress notification restarts it. 0: off.' }),
  /**
   * Longest a request may take, progress or not. 0 for no ceiling.
   * @default 3600000 ms
   */
  maxRequestTimeout: int(0).default(TIMEOUT_DEFAULTS.maxRequestTimeout).meta({ description: 'Longest a request may take, progress or not. 0: no ceiling.' }),
  /** `requestTimeout` for calls of particular tools, by tool name. */
  toolTimeouts: z.record(z.string(), int(0), { error: 'must be an object of tool names to milliseconds' }).optional().meta({ description: 'requestTimeout per tool name.' })
}

export const nameField = nonEmptyString().optional().meta({ description: 'Name in logs, metrics, health checks and sessions.' })

/** Stdio and legacy SSE upstreams: one process or connection per session unless `shared`. */
const channelShape = {
  /**
   * One process (stdio) or connection (legacy SSE) for every session, for servers known to keep
   * no per-client state. Off by default: a stdio server serves one client.
   * @default false
   */
  shared: z.boolean().default(false).meta({ description: 'One process (or connection) for every session: stateless servers only.' }),
  /** Most processes or connections open at once; more sessions get 503. @default 100 */
  maxSessions: int(1).default(CHANNEL_DEFAULTS.maxChannels).meta({ description: 'Most processes or connections open at once; more sessions get 503.' }),
  /** Messages held for a session's GET stream before it opens. @default 1000 */
  maxQueued: int(0).default(CHANNEL_DEFAULTS.maxQueued).meta({ description: 'Messages held for a session\'s GET stream before it opens.' }),
  /** Close a process or connection whose session saw no request for this long (a backstop). @default 3600000 ms */
  idleMs: int(0).default(CHANNEL_DEFAULTS.idleMs).meta({ description: 'A session with no request and no open GET stream this long has its process or connection closed (backstop).' })
}

/** HTTP upstreams (Streamable HTTP and legacy SSE): the connection pool. */
const poolShape = {
  /**
   * Headers added to every upstream request: the gateway's own credentials for this upstream
   * (`${NAME}` in a config file reads the gateway's environment). The client's `Authorization`
   * is never forwarded.
   * @default {}
   */
  headers: headerRecord().default({}).meta({ description: 'Headers sent with every upstream request: the gateway\'s own credentials. `${NAME}` reads the gateway\'s environment.' }),
  /**
   * Most connections to the upstream. Every open SSE stream holds one connection for its whole
   * life, so a cap here is also a cap on open streams.
   * @default null (unlimited)
   */
  connections: int(1).nullable().default(UPSTREAM_DEFAULTS.connections).meta({ description: 'Most connections to the upstream (null: unlimited). Every open SSE stream holds one.' }),
  /** Time to establish a TCP connection. @default 10000 ms */
  connectTimeout: int(1).default(UPSTREAM_DEFAULTS.connectTimeout).meta({ description: 'TCP connect timeout.' }),
  /**
   * Time from sending a request to the upstream's response headers (for an upstream answering in
   * JSON, also the longest tool call).
   * @default 300000 ms
   */
  headersTimeout: int(1).default(UPSTREAM_DEFAULTS.headersTimeout).meta({ description: 'Time to the upstream\'s response headers.' }),
  /** How long an idle keep-alive connection is kept. @default 4000 ms */
  keepAliveTimeout: int(1).default(UPSTREAM_DEFAULTS.keepAliveTimeout).meta({ description: 'How long an idle upstream connection is kept.' })
}

export const httpUpstreamSchema = z.strictObject({
  kind: z.literal('streamable-http').default('streamable-http'),
  /** Name used in logs, metrics and error messages. @default the endpoint's (`default`) */
  name: nameField,
  ...timeoutShape,
  /** The upstream's MCP endpoint, e.g. `http://127.0.0.1:4000/mcp`. */
  url: httpUrl().meta({ description: 'The upstream\'s MCP endpoint.' }),
  ...poolShape,
  /** Longest silence between two body chunks of a POST response (GET streams have none). @default 300000 ms */
  bodyTimeout: int(0).default(UPSTREAM_DEFAULTS.bodyTimeout).meta({ description: 'Longest silence inside a POST response body.' }),
  /** HTTP/1.1 requests sent on one connection before the first answer. @default 1 */
  pipelining: int(1).default(UPSTREAM_DEFAULTS.pipelining).meta({ description: 'HTTP/1.1 requests in flight per connection.' }),
  /**
   * Offer HTTP/2 to an `https:` upstream (ALPN; HTTP/1.1 when it does not take it). One HTTP/2
   * connection then carries every request and stream, so `connections` no longer caps streams.
   * @default false
   */
  http2: z.boolean().default(false).meta({ description: 'Offer HTTP/2 to an https upstream (ALPN).' }),
  /**
   * The upstream's protocol era: `2025` (sessions, `initialize`), `2026` (2026-07-28, stateless),
   * or `auto` (asked once with `server/discover`). Clients of the other era are bridged.
   * @default 'auto'
   */
  protocol: z.enum(['auto', '2025', '2026'], { error: 'must be "auto", "2025" or "2026"' }).default('auto').meta({ description: 'The upstream\'s protocol era: 2025 (sessions), 2026 (2026-07-28, stateless), or auto (asked with server/discover). The gateway bridges clients of the other era.' }),
  /**
   * How the gateway authenticates to the upstream beyond `headers`: `static`, `clientCredentials`,
   * `tokenExchange` (RFC 8693) or per-user `oauth`. The last two act for the caller: they need
   * inbound auth, and a `protocol` of 2025 or 2026 (the era cannot be asked without a user).
   * @default none (`headers` only)
   */
  auth: upstreamAuthSchema.optional()
}).meta({ id: 'httpUpstream', description: 'A Streamable HTTP upstream.' })

export const stdioUpstreamSchema = z.strictObject({
  kind: z.literal('stdio'),
  /** Name used in logs, metrics and error messages. @default the endpoint's (`default`) */
  name: nameField,
  ...timeoutShape,
  /** The program to run, found on PATH (`npx`, `node`, `uvx`, ...). */
  command: nonEmptyString('is required for kind "stdio" (the program to run)').meta({ description: 'The program to run (npx, node, uvx, ...), found on PATH.' }),
  /** @default [] */
  args: stringList().default([]),
  /**
   * Environment of the child, on top of a small safe base (PATH, HOME, USER, ...): the gateway's
   * own environment is not passed on. `${NAME}` in a config file reads the gateway's environment.
   * @default {}
   */
  env: z.record(z.string(), z.string({ error: 'must be a string' }), { error: 'must be an object of variable names to string values' }).default({})
    .meta({ description: 'Environment of the child on top of a small safe base; `${NAME}` reads the gateway\'s environment.' }),
  /** Working directory. @default the gateway's */
  cwd: z.string().optional(),
  /** Time between SIGTERM and SIGKILL when a child is stopped. @default 2000 ms */
  killGraceMs: int(0).default(STDIO_DEFAULTS.killGraceMs).meta({ description: 'Time between SIGTERM and SIGKILL when a child is stopped.' }),
  /** Longest line accepted on stdout; a longer one counts as garbage. @default 16 MiB */
  maxLineBytes: int(1024).default(STDIO_DEFAULTS.maxLineBytes).meta({ description: 'Longest stdout line accepted.' }),
  /** Children kept started and waiting for a session (per-session mode). @default 0 */
  spares: int(0).max(64, { error: 'must be at most 64' }).default(STDIO_LIFECYCLE_DEFAULTS.spares).meta({ description: 'Children kept started and waiting for a session, so initialize does not wait for a process start.' }),
  /** Longest a child serves; retired between requests, its session ended. 0: no limit. @default 0 */
  maxLifetimeMs: int(0).default(STDIO_LIFECYCLE_DEFAULTS.maxLifetimeMs).meta({ description: 'Longest a child serves (retired between requests; its session ends). 0: no limit.' }),
  /** Resident memory a child may use, in MiB (read from /proc); past it the child is stopped. 0: no ceiling. @default 0 */
  maxMemoryMb: int(0).default(0).meta({ description: 'Resident memory a child may use, in MiB (Linux /proc); past it the child is stopped and its session ends. 0: no ceiling.' }),
  ...channelShape,
}).meta({ id: 'stdioUpstream', description: 'A stdio upstream: a program speaking MCP on stdin/stdout, one process per session by default.' })

export const sseUpstreamSchema = z.strictObject({
  kind: z.literal('sse'),
  /** Name used in logs, metrics and error messages. @default the endpoint's (`default`) */
  name: nameField,
  ...timeoutShape,
  /** The server's SSE endpoint, e.g. `http://127.0.0.1:4000/sse`. */
  url: httpUrl().meta({ description: 'The server\'s SSE endpoint.' }),
  ...poolShape,
  ...channelShape,
}).meta({ id: 'sseUpstream', description: 'A legacy HTTP+SSE upstream (protocol 2024-11-05).' })

const UPSTREAM_SHAPE_MESSAGE = 'must be a URL string or an object with a url (or a command, for kind "stdio")'

/** Upstream options as a user writes them: a URL string or an object of one `kind`. */
export const upstreamSchema = z.union([
  httpUrl().meta({ description: 'A Streamable HTTP endpoint URL.' }),
  z.discriminatedUnion('kind', [httpUpstreamSchema, stdioUpstreamSchema, sseUpstreamSchema])
], { error: UPSTREAM_SHAPE_MESSAGE })

/** One of several upstreams: named, each on its own path. */
export const namedShape = {
  /** Names the upstream in logs, metrics, health checks and sessions. */
  name: nonEmptyString('is required (a non-empty string)').meta({ description: 'Names the upstream; its endpoint is /mcp/<name> unless path says otherwise.' }),
  /**
   * Path of this upstream's MCP endpoint.
   * @default `/mcp/<name>`
   */
  path: nonEmptyString().regex(/^\//, { error: 'must start with "/"' }).optional().meta({ description: 'Path of this upstream\'s MCP endpoint.' })
}
export type UpstreamConfigInput = z.input<typeof upstreamSchema>

/** What the upstream schema gave, as `createUpstream` takes it (a URL string has every default). */
export function upstreamOptionsOf (parsed: string | UpstreamConfig, defaultName: string): UpstreamOptions {
  const options = typeof parsed === 'string' ? httpUpstreamSchema.parse({ url: parsed }) : parsed
  return { ...options, name: options.name ?? defaultName } as UpstreamOptions
}

/** `value` is a URL string (a Streamable HTTP upstream) or an object with a `kind`. */
export function checkUpstreamOptions (at: string, value: unknown, defaultName: string): UpstreamOptions {
  return upstreamOptionsOf(parseOptions(upstreamSchema, at, value), defaultName)
}

/** The request timeouts of checked upstream options. */
export function timeoutsOf (options: UpstreamOptions): CheckedTimeouts {
  return {
    requestTimeout: options.requestTimeout ?? TIMEOUT_DEFAULTS.requestTimeout,
    maxRequestTimeout: options.maxRequestTimeout ?? TIMEOUT_DEFAULTS.maxRequestTimeout,
    toolTimeouts: new Map(Object.entries(options.toolTimeouts ?? {}))
  }
}

/** Only the timeouts: the other keys are the upstream's (checked by `checkUpstreamOptions`). */
const timeoutsSchema = z.looseObject(timeoutShape)

/** An upstream's request timeouts (a URL string takes the defaults). */
export function checkTimeouts (at: string, value: unknown): CheckedTimeouts {
  return timeoutsOf({ url: '', name: '', ...parseOptions(timeoutsSchema, at, isPlainObject(value) ? value : {}) })
}
