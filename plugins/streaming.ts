/**
 * Resumable streams: every SSE event the gateway sends a session's client is logged in an
 * `EventStore` first, with a gateway event id, so a client that reconnects with `Last-Event-ID`
 * gets exactly what it missed. Keep-alives, slow-reader limits and shutdown hints live here too.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { MemoryEventStore } from '../lib/events/memory-store.ts'
import type { EventStore } from '../lib/events/store.ts'
import { StreamHub } from '../lib/streams/hub.ts'
import { checkStreamingOptions, type McpStreamingOptions } from './streaming-options.ts'

export { DRAIN_MARGIN_MS, DRAIN_TIMEOUT_MS, drainFor, type McpStreamingOptions } from './streaming-options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The event log. */
    mcpEvents: EventStore
    /** Live resumable streams (used by the proxy). */
    mcpStreams: StreamHub
  }
}

async function mcpStreaming (fastify: FastifyInstance, options: McpStreamingOptions): Promise<void> {
  const checked = checkStreamingOptions(options, fastify.initialConfig.pluginTimeout ?? 10_000)
  const store = checked.store ?? new MemoryEventStore(checked.retention)
  const hub = new StreamHub(store, checked.settings, fastify.log)
  fastify.decorate('mcpEvents', store)
  fastify.decorate('mcpStreams', hub)
  // A client listening on a stream is using its session, even without sending requests.
  hub.onActiveSessions = (sessionIds) => {
    const now = Date.now()
    for (const id of sessionIds) {
      fastify.mcpSessions.store.touch(id, now).catch((err: unknown) => { fastify.log.warn({ err, sessionId: id }, 'session touch failed') })
    }
  }
  // Answers on their way finish first (up to the deadline); then every stream ends with a retry
  // hint, so clients resume after a restart or on another instance.
  fastify.mcpShutdown.add('drain', 'answers on their way (streaming)', async () => {
    const drained = await hub.drain(checked.drainTimeoutMs)
    if (!drained) fastify.log.warn({ drainTimeoutMs: checked.drainTimeoutMs }, 'closing streams with answers still on their way')
  })
  fastify.mcpShutdown.add('end', 'logged streams', async () => { await hub.closeAll() })
  if (checked.store === undefined) fastify.addHook('onClose', async () => { await store.close() })
}

export default fp(mcpStreaming, {
  name: 'mcp-gateway-streaming',
  fastify: '5.x',
  dependencies: ['mcp-gateway-sessions']
})
