import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { SessionManager } from '../lib/session/manager.ts'
import { MemorySessionStore } from '../lib/session/memory-store.ts'
import type { SessionRecord } from '../lib/session/store.ts'
import { checkSessionsOptions, type McpSessionsOptions } from './sessions-options.ts'

export type { McpSessionsOptions } from './sessions-options.ts'

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

async function mcpSessions (fastify: FastifyInstance, options: McpSessionsOptions): Promise<void> {
  const checked = checkSessionsOptions(options)
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
