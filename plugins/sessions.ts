import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { invalid } from '../lib/options.ts'
import { SessionManager } from '../lib/session/manager.ts'
import { MemorySessionStore } from '../lib/session/memory-store.ts'
import type { SessionRecord, SessionStore } from '../lib/session/store.ts'

export interface McpSessionsOptions {
  /**
   * Where session records live. The plugin closes a store only if it created it.
   * @default a new `MemorySessionStore` (one process, no setup)
   */
  store?: SessionStore
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

const STORE_METHODS = ['create', 'get', 'update', 'touch', 'delete', 'size', 'close'] as const

function checkOptions (options: McpSessionsOptions): { store: SessionStore | undefined } {
  const store = options.store
  if (store !== undefined) {
    if (typeof store !== 'object' || store === null) throw invalid('store', 'must be a SessionStore')
    for (const method of STORE_METHODS) {
      if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') {
        throw invalid('store', `must implement SessionStore (missing ${method}())`)
      }
    }
  }
  return { store }
}

async function mcpSessions (fastify: FastifyInstance, options: McpSessionsOptions): Promise<void> {
  const checked = checkOptions(options)
  const store = checked.store ?? new MemorySessionStore()
  fastify.decorate('mcpSessions', new SessionManager(store))
  fastify.decorateRequest('mcpSession', null)
  if (checked.store === undefined) {
    fastify.addHook('onClose', async () => { await store.close() })
  }
}

export default fp(mcpSessions, { name: 'mcp-gateway-sessions', fastify: '5.x' })
