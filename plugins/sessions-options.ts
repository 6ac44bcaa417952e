/**
 * The sessions plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema.
 */
import { codeValue, int, parseOptions, pluginSchema, type SectionInput } from '../lib/options.ts'
import { SESSION_LIMITS, type SessionLimits } from '../lib/session/manager.ts'
import type { SessionStore } from '../lib/session/store.ts'

const STORE_METHODS = ['create', 'get', 'update', 'touch', 'delete', 'size', 'listExpired', 'close'] as const

export const sessionsShape = {
  /**
   * A session not used for this long is expired (the upstream is told, everything it held freed).
   * @default 1800000 (30 minutes)
   */
  idleTimeoutMs: int(1).default(SESSION_LIMITS.idleTimeoutMs).meta({ description: 'Idle sessions expire after this.' }),
  /**
   * A session older than this is expired however busy it is.
   * @default 86400000 (24 hours)
   */
  maxLifetimeMs: int(1).default(SESSION_LIMITS.maxLifetimeMs).meta({ description: 'Sessions expire this long after they opened.' }),
  /**
   * Most live sessions; an `initialize` past it gets 503 with `Retry-After`.
   * @default 10000
   */
  maxSessions: int(1).default(SESSION_LIMITS.maxSessions).meta({ description: 'Live sessions at most.' }),
  /**
   * How often expired sessions are looked for.
   * @default a quarter of `idleTimeoutMs`, at most 30 s
   */
  sweepIntervalMs: int(10).optional().meta({ description: 'How often expired sessions are looked for. Default: a quarter of idleTimeoutMs, at most 30000.' }),
  /**
   * Where session records live. The plugin closes a store only if it created it. Code only.
   * @default a new `MemorySessionStore` (one process, no setup)
   */
  store: codeValue<SessionStore>((value) => {
    if (typeof value !== 'object' || value === null) return 'must be a SessionStore'
    const missing = STORE_METHODS.find((method) => typeof (value as Record<string, unknown>)[method] !== 'function')
    return missing === undefined ? undefined : `must implement SessionStore (missing ${missing}())`
  }).optional()
}

export const sessionsSchema = pluginSchema(sessionsShape)

export type McpSessionsOptions = SectionInput<typeof sessionsShape>

export interface CheckedSessionsOptions {
  store: SessionStore | undefined
  limits: SessionLimits
  sweepIntervalMs: number
}

export function checkSessionsOptions (options: McpSessionsOptions): CheckedSessionsOptions {
  const { store, idleTimeoutMs, maxLifetimeMs, maxSessions, sweepIntervalMs } = parseOptions(sessionsSchema, '', options)
  // Its default follows idleTimeoutMs: an expired session is found within a quarter of it.
  return { store, limits: { idleTimeoutMs, maxLifetimeMs, maxSessions }, sweepIntervalMs: sweepIntervalMs ?? Math.max(10, Math.min(30_000, Math.floor(idleTimeoutMs / 4))) }
}
