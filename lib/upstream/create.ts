/** Builds the upstream a checked configuration describes, whatever its kind. */
import type { Logger } from '../logger.ts'
import { invalid } from '../options.ts'
import { ChannelUpstream, CHANNEL_DEFAULTS } from './channel-upstream.ts'
import { LegacySseClient, type LegacySseOptions } from './legacy-sse.ts'
import type { StdioCommand } from './stdio.ts'
import { StdioPool, STDIO_LIFECYCLE_DEFAULTS } from './stdio-pool.ts'
import { StreamableHttpUpstream, type StreamableHttpUpstreamOptions } from './streamable-http.ts'
import type { Upstream } from './types.ts'
import type { TimeoutOptions } from '../deadline.ts'
import { DualEraUpstream, type ProtocolSetting } from './dual-era.ts'
import type { VirtualUpstreamOptions } from '../federation/options.ts'
import { createVirtualUpstream } from '../federation/virtual-upstream.ts'
import type { SharedState } from '../federation/virtual-state.ts'
import { createCredentials, type AuthContext } from '../upstream-auth/create.ts'
import type { UpstreamAuth } from '../upstream-auth/options.ts'

/** What channel upstreams (stdio, legacy SSE) share. */
export interface ChannelLimits {
  /**
   * One process (stdio) or connection (legacy SSE) for every session, for servers known to keep
   * no per-client state. Off by default: a stdio server serves one client.
   * @default false
   */
  shared?: boolean
  /** Most processes or connections open at once; more sessions get 503. @default 100 */
  maxSessions?: number
  /** Messages held for a session's GET stream before it opens. @default 1000 */
  maxQueued?: number
  /** Close a process or connection whose session saw no request for this long (a backstop). @default 3600000 ms */
  idleMs?: number
}

/** A stdio upstream's children over their lives (README, "stdio lifecycle"). */
export interface StdioLifecycleOptions {
  /** Children kept started and waiting for a session, so `initialize` does not wait for one to start. @default 0 */
  spares?: number
  /** Longest a child serves (retired between requests; its session ends). 0: no limit. @default 0 */
  maxLifetimeMs?: number
  /** Resident memory a child may use, in MiB (Linux); past it the child is stopped and its session ends. 0: no ceiling. @default 0 */
  maxMemoryMb?: number
}

export type StdioUpstreamOptions = { kind: 'stdio', name: string } & StdioCommand & ChannelLimits & StdioLifecycleOptions & TimeoutOptions
export type SseUpstreamOptions = { kind: 'sse' } & LegacySseOptions & ChannelLimits & TimeoutOptions
export type HttpUpstreamOptions = { kind?: 'streamable-http' } & StreamableHttpUpstreamOptions & TimeoutOptions & {
  /**
   * The upstream's protocol era: `2025` (sessions, `initialize`), `2026` (2026-07-28, stateless),
   * or `auto` (asked once with `server/discover`). 2025 clients reach a 2026 upstream through
   * the era bridge; 2026 clients reach either as they are.
   * @default 'auto'
   */
  protocol?: ProtocolSetting
  /**
   * How the gateway authenticates to the upstream beyond `headers`: `static`, `clientCredentials`,
   * `tokenExchange` or per-user `oauth` (README, "Upstream identity").
   * @default none (`headers` only)
   */
  auth?: UpstreamAuth
}
export type UpstreamOptions = HttpUpstreamOptions | StdioUpstreamOptions | SseUpstreamOptions | VirtualUpstreamOptions

/** The options every channel upstream takes from its config, whatever carries its messages. */
function channelOptions (options: StdioUpstreamOptions | SseUpstreamOptions, log: Logger) {
  return {
    name: options.name,
    kind: options.kind,
    shared: options.shared,
    maxChannels: options.maxSessions ?? CHANNEL_DEFAULTS.maxChannels,
    maxQueued: options.maxQueued,
    idleMs: options.idleMs,
    log
  }
}

/**
 * `shared`: the instances' shared store (Redis), for upstreams whose sessions any instance can
 * serve. `auth`: what per-user `auth` modes need (none for a virtual server's members).
 */
export function createUpstream (options: UpstreamOptions, log: Logger, shared?: SharedState, auth?: AuthContext): Upstream {
  if (options.kind === 'virtual') return createVirtualUpstream(options, log, shared)
  if (options.kind === 'stdio') {
    if (options.shared === true && (options.spares ?? 0) > 0) throw invalid(`upstream ${options.name}: spares`, 'a shared stdio upstream runs one child; spares are for per-session children')
    let spawnError: Error | undefined
    const pool: StdioPool = new StdioPool(options.name, options, {
      spares: options.spares ?? STDIO_LIFECYCLE_DEFAULTS.spares,
      maxLifetimeMs: options.maxLifetimeMs ?? STDIO_LIFECYCLE_DEFAULTS.maxLifetimeMs,
      maxMemoryBytes: (options.maxMemoryMb ?? 0) * 1048576
    }, log, (label) => upstream.busy(label))
    const upstream: ChannelUpstream = new ChannelUpstream({
      ...channelOptions(options, log),
      open: async (label) => {
        try {
          const channel = await pool.take(label)
          spawnError = undefined
          log.info({ upstream: options.name, childPid: channel.pid, upstreamSessionId: label }, 'stdio upstream started')
          return channel
        } catch (err) {
          spawnError = err as Error
          throw err
        }
      },
      // Starting a process to answer a probe would cost more than it tells: the last start did.
      probe: async () => { if (spawnError !== undefined) throw spawnError },
      warm: () => { pool.warm() },
      children: () => pool.report(),
      release: async (force) => { if (force) pool.destroy(); else await pool.close() }
    })
    return upstream
  }
  if (options.kind === 'sse') {
    const client = new LegacySseClient(options)
    return new ChannelUpstream({
      ...channelOptions(options, log),
      open: async (label) => await client.open(log, label),
      probe: async () => await client.probe(),
      release: async (force) => { await (force ? client.destroy() : client.close()) }
    })
  }
  const credentials = createCredentials(options, auth)
  const headers = options.auth?.mode === 'static' ? { ...options.headers, ...options.auth.headers } : options.headers
  return new DualEraUpstream(new StreamableHttpUpstream({ ...options, headers, credentials }), options.protocol ?? 'auto', log)
}

type NameOptional<T> = T extends unknown ? Omit<T, 'name'> & { name?: string } : never
/** Upstream options as a user writes them: the name may come from elsewhere (a default, a key). */
export type UpstreamConfig = NameOptional<UpstreamOptions>
