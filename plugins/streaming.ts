/**
 * Resumable streams: every SSE event the gateway sends a session's client is logged in an
 * `EventStore` first, with a gateway event id, so a client that reconnects with `Last-Event-ID`
 * gets exactly what it missed. Keep-alives, slow-reader limits and shutdown hints live here too.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { MemoryEventStore } from '../lib/events/memory-store.ts'
import { RETENTION_DEFAULTS, type EventStore, type Retention } from '../lib/events/store.ts'
import { invalid, isPlainObject, optionalInteger } from '../lib/options.ts'
import { STREAMING_DEFAULTS, StreamHub, type StreamingOptions } from '../lib/streams/hub.ts'

export interface McpStreamingOptions extends Partial<StreamingOptions> {
  /**
   * Where events are logged. The plugin closes a store only if it created it.
   * @default a new `MemoryEventStore` with `retention`
   */
  store?: EventStore
  /** Retention of the default memory store (ignored with `store`). */
  retention?: Partial<Retention>
  /**
   * At `close()`, how long answers still on their way (POST streams) may take before every stream
   * is ended with a `retry:` hint. New requests get 503 meanwhile. Fastify cuts a `preClose` hook
   * that runs past the host's `pluginTimeout` (`close()` then rejects with
   * `AVV_ERR_READY_TIMEOUT`), so the drain plus `DRAIN_MARGIN_MS` must fit in it: a value that does
   * not is refused at registration (raise `pluginTimeout` in `Fastify({ pluginTimeout })`).
   * @default 10000, or less to fit: the host's `pluginTimeout` minus `DRAIN_MARGIN_MS` (8000 with
   * Fastify's default of 10 s)
   */
  drainTimeoutMs?: number
}

export const DRAIN_TIMEOUT_MS = 10_000

/**
 * Room left in the host's `pluginTimeout` after the drains, for the rest of the close's one
 * `preClose` hook: stopping upstream readers, releasing leases, ending streams after their last
 * logged event (the `end` phase), and the idle sockets' 200 ms grace (the `sockets` phase).
 */
export const DRAIN_MARGIN_MS = 2000

/**
 * A drain (this plugin's, the WebSocket plugin's) for a host whose `pluginTimeout` is
 * `pluginTimeout` (0: no limit). The drains run together in the core plugin's one `preClose`
 * hook, which Fastify cuts at `pluginTimeout`; the margin holds what follows them in that hook.
 */
export function drainFor (at: string, given: unknown, pluginTimeout: number): number {
  const room = pluginTimeout > 0 ? Math.max(0, pluginTimeout - DRAIN_MARGIN_MS) : Number.POSITIVE_INFINITY
  if (given === undefined) return Math.min(DRAIN_TIMEOUT_MS, room)
  const drain = optionalInteger(at, given, 0, DRAIN_TIMEOUT_MS)
  if (drain > room) {
    throw invalid(at, `${drain} ms does not fit in Fastify's pluginTimeout (${pluginTimeout} ms), which must also hold ${DRAIN_MARGIN_MS} ms to end the streams: set Fastify({ pluginTimeout: ${drain + DRAIN_MARGIN_MS} }) or more, or a ${at} of at most ${room}`)
  }
  return drain
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The event log. */
    mcpEvents: EventStore
    /** Live resumable streams (used by the proxy). */
    mcpStreams: StreamHub
  }
}

const STORE_METHODS = ['append', 'open', 'replay', 'lastSeq', 'deleteSession', 'stats', 'close'] as const

function checkOptions (options: McpStreamingOptions, pluginTimeout: number): { settings: StreamingOptions, retention: Retention, store: EventStore | undefined, drainTimeoutMs: number } {
  if (!isPlainObject(options)) throw invalid('options', 'must be an object')
  const store = options.store
  if (store !== undefined) {
    for (const method of STORE_METHODS) {
      if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function') throw invalid('store', `must implement EventStore (missing ${method}())`)
    }
  }
  const retention = options.retention ?? {}
  if (!isPlainObject(retention)) throw invalid('retention', 'must be an object')
  return {
    store: store as EventStore | undefined,
    drainTimeoutMs: drainFor('drainTimeoutMs', options.drainTimeoutMs, pluginTimeout),
    settings: {
      retryMs: optionalInteger('retryMs', options.retryMs, 0, STREAMING_DEFAULTS.retryMs),
      keepAliveMs: optionalInteger('keepAliveMs', options.keepAliveMs, 0, STREAMING_DEFAULTS.keepAliveMs),
      highWaterMark: optionalInteger('highWaterMark', options.highWaterMark, 1024, STREAMING_DEFAULTS.highWaterMark),
      slowReaderTimeoutMs: optionalInteger('slowReaderTimeoutMs', options.slowReaderTimeoutMs, 1, STREAMING_DEFAULTS.slowReaderTimeoutMs),
      pollAfterMs: optionalInteger('pollAfterMs', options.pollAfterMs, 0, STREAMING_DEFAULTS.pollAfterMs),
      detachedStreamTtlMs: optionalInteger('detachedStreamTtlMs', options.detachedStreamTtlMs, 0, STREAMING_DEFAULTS.detachedStreamTtlMs),
      leaseMs: optionalInteger('leaseMs', options.leaseMs, 100, STREAMING_DEFAULTS.leaseMs)
    },
    retention: {
      maxEventsPerStream: optionalInteger('retention.maxEventsPerStream', retention.maxEventsPerStream, 1, RETENTION_DEFAULTS.maxEventsPerStream),
      maxBytesPerSession: optionalInteger('retention.maxBytesPerSession', retention.maxBytesPerSession, 1, RETENTION_DEFAULTS.maxBytesPerSession),
      maxAgeMs: optionalInteger('retention.maxAgeMs', retention.maxAgeMs, 1, RETENTION_DEFAULTS.maxAgeMs),
      maxBytesTotal: optionalInteger('retention.maxBytesTotal', retention.maxBytesTotal, 1, RETENTION_DEFAULTS.maxBytesTotal)
    }
  }
}

async function mcpStreaming (fastify: FastifyInstance, options: McpStreamingOptions): Promise<void> {
  const checked = checkOptions(options, fastify.initialConfig.pluginTimeout ?? 10_000)
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
