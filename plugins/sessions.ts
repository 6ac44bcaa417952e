import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { REGISTER_OPTION_KEYS, invalid, knownKeys, optionalInteger } from '../lib/options.ts'
import { SESSION_LIMITS, SessionManager, type SessionLimits } from '../lib/session/manager.ts'
import { MemorySessionStore } from '../lib/session/memory-store.ts'
import type { SessionRecord, SessionStore } from '../lib/session/store.ts'

export interface McpSessionsOptions extends Partial<SessionLimits> {
  /**
   * Where session records live. The plugin closes a store only if it created it.
   * @default a new `MemorySessionStore` (one process, no setup)
   */
  store?: SessionStore
  /**
   * How often expired sessions are looked for.
   * @default a quarter of `idleTimeoutMs`, at most 30 s
   */
  sweepIntervalMs?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Gateway sessions: open, find, update, end. */
    mcpSessions: SessionManager
  }
  interface FastifyRequest {
    /** The gateway session this request belongs to; null before resolution and for stateless requests. */
    mcpSession: SessionRecord | null
  }
}

const STORE_METHODS = ['create', 'get', 'update', 'touch', 'delete', 'size', 'listExpired', 'close'] as const

interface Checked {
  store: SessionStore | undefined
  limits: SessionLimits
  sweepIntervalMs: number
}

function checkOptions (options: McpSessionsOptions): Checked {
  knownKeys('', options as Record<string, unknown>, [...REGISTER_OPTION_KEYS, 'store', 'sweepIntervalMs', 'idleTimeoutMs', 'maxLifetimeMs', 'maxSessions'])
  const store = options.store
  if (store !== undefined) {
    if (typeof store !== 'object' || store === null) throw invalid('store', 'must be a SessionStore')
    for (const method of STORE_METHODS) {
      if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') {
        throw invalid('store', `must implement SessionStore (missing ${method}())`)
      }
    }
  }
  const limits: SessionLimits = {
    idleTimeoutMs: optionalInteger('idleTimeoutMs', options.idleTimeoutMs, 1, SESSION_LIMITS.idleTimeoutMs),
    maxLifetimeMs: optionalInteger('maxLifetimeMs', options.maxLifetimeMs, 1, SESSION_LIMITS.maxLifetimeMs),
    maxSessions: optionalInteger('maxSessions', options.maxSessions, 1, SESSION_LIMITS.maxSessions)
  }
  const sweepIntervalMs = optionalInteger('sweepIntervalMs', options.sweepIntervalMs, 10, Math.max(10, Math.min(30_000, Math.floor(limits.idleTimeoutMs / 4))))
  return { store, limits, sweepIntervalMs }
}

async function mcpSessions (fastify: FastifyInstance, options: McpSessionsOptions): Promise<void> {
  const checked = checkOptions(options)
  const store = checked.store ?? new MemorySessionStore()
  const sessions = new SessionManager(store, Date.now, checked.limits)
  fastify.decorate('mcpSessions', sessions)
  fastify.decorateRequest('mcpSession', null)

  // One timer for all sessions; a sweep never overlaps the previous one.
  let sweeping: Promise<void> | undefined
  const timer = setInterval(() => {
    if (sweeping !== undefined) return
    sweeping = sessions.sweep()
      .then((expired) => { if (expired > 0) fastify.log.info({ expired }, 'expired idle sessions') })
      .catch((err: unknown) => { fastify.log.error({ err }, 'session sweep failed') })
      .finally(() => { sweeping = undefined })
  }, checked.sweepIntervalMs)
  timer.unref()

  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await sweeping
    if (checked.store === undefined) await store.close()
  })
}

export default fp(mcpSessions, { name: 'mcp-gateway-sessions', fastify: '5.x', dependencies: ['mcp-gateway-core'] })
