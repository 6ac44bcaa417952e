/**
 * The streaming plugin's options: one schema gives their type, their defaults, the check that runs
 * once at register and their part of the config file's JSON Schema. The drain's bound depends on
 * the host's `pluginTimeout`, so it is checked in code after the schema.
 */
import { RETENTION_DEFAULTS, type EventStore } from '../lib/events/store.ts'
import { codeValue, int, invalid, optionalInteger, parseOptions, pluginSchema, z, type SectionInput } from '../lib/options.ts'
import { STREAMING_DEFAULTS, type StreamingOptions } from '../lib/streams/hub.ts'

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

/** Retention of an event log (the memory one here, the Redis one in the store plugin). */
export const retentionSchema = z.strictObject({
  /** Most events kept per stream; older ones are trimmed first. @default 10000 */
  maxEventsPerStream: int(1).default(RETENTION_DEFAULTS.maxEventsPerStream).meta({ description: 'Most events kept per stream.' }),
  /** Most bytes of event data kept per session, across its streams; oldest events go first. @default 8 MiB */
  maxBytesPerSession: int(1).default(RETENTION_DEFAULTS.maxBytesPerSession).meta({ description: 'Most bytes of event data kept per session.' }),
  /**
   * Most bytes of event data kept by the in-memory log across all sessions: past it the oldest
   * sessions' oldest events go first (a client resuming from one gets 410 `-32067`). The Redis
   * log ignores it: bound Redis with its own `maxmemory`.
   * @default 268435456 (256 MiB)
   */
  maxBytesTotal: int(1).default(RETENTION_DEFAULTS.maxBytesTotal).meta({ description: 'Most bytes of event data the in-memory log keeps across all sessions; the oldest sessions\' oldest events go first. Ignored by the Redis log.' }),
  /** Events older than this are trimmed. @default 600000 ms (10 minutes) */
  maxAgeMs: int(1).default(RETENTION_DEFAULTS.maxAgeMs).meta({ description: 'Events older than this are trimmed.' })
}, { error: 'must be an object' }).meta({ id: 'retention' })

const STORE_METHODS = ['append', 'open', 'replay', 'lastSeq', 'deleteSession', 'stats', 'close'] as const

export const streamingShape = {
  /** `retry:` sent at the start of every stream, in ms: how soon a cut-off client reconnects. @default 1000 */
  retryMs: int(0).default(STREAMING_DEFAULTS.retryMs).meta({ description: 'retry: sent to clients.' }),
  /** SSE comment sent on a stream idle this long, so load balancers keep it open. 0 turns it off. @default 15000 */
  keepAliveMs: int(0).default(STREAMING_DEFAULTS.keepAliveMs).meta({ description: 'Keep-alive comment on idle streams; 0: off.' }),
  /**
   * Bytes a client may leave unread. Past it, the gateway stops reading the upstream for that
   * stream until the client catches up, which bounds gateway memory per stream.
   * @default 1 MiB
   */
  highWaterMark: int(1024).default(STREAMING_DEFAULTS.highWaterMark).meta({ description: 'Unread bytes per client before the upstream is held back.' }),
  /** A client that stays past the high-water mark this long is dropped (it resumes from the log). @default 10000 */
  slowReaderTimeoutMs: int(1).default(STREAMING_DEFAULTS.slowReaderTimeoutMs).meta({ description: 'How long a client may stay past the high-water mark.' }),
  /** Close POST response streams this long after they open, so the client polls (2025-11-25 clients). 0: off. @default 0 */
  pollAfterMs: int(0).default(STREAMING_DEFAULTS.pollAfterMs).meta({ description: 'Close answer streams after this and let the client poll; 0: off.' }),
  /** A session's GET stream keeps reading (and logging) from the upstream this long after its client left. @default 300000 */
  detachedStreamTtlMs: int(0).default(STREAMING_DEFAULTS.detachedStreamTtlMs).meta({ description: 'The GET stream keeps reading this long after its client left.' }),
  /**
   * With a log shared by several instances (Redis): how long the instance feeding a stream holds
   * it without renewing; another instance takes a dead one's streams over after it.
   * @default 6000
   */
  leaseMs: int(100).default(STREAMING_DEFAULTS.leaseMs).meta({ description: 'Redis: lease on a stream fed by one instance.' }),
  /**
   * At `close()`, how long answers still on their way (POST streams) may take before every stream
   * is ended with a `retry:` hint. New requests get 503 meanwhile. Fastify cuts a `preClose` hook
   * that runs past the host's `pluginTimeout`, so the drain plus `DRAIN_MARGIN_MS` must fit in it:
   * a value that does not is refused at registration (raise `pluginTimeout` in `Fastify({ pluginTimeout })`).
   * @default 10000, or less to fit: the host's `pluginTimeout` minus `DRAIN_MARGIN_MS` (8000 with
   * Fastify's default of 10 s)
   */
  drainTimeoutMs: int(0).optional().meta({ description: 'At shutdown, longest wait for answers on their way.', default: DRAIN_TIMEOUT_MS }),
  /** Retention of the default memory store (ignored with `store`). */
  retention: retentionSchema.prefault({}),
  /**
   * Where events are logged. The plugin closes a store only if it created it. Code only.
   * @default a new `MemoryEventStore` with `retention`
   */
  store: codeValue<EventStore>((value) => {
    const missing = STORE_METHODS.find((method) => typeof (value as Record<string, unknown> | null)?.[method] !== 'function')
    return missing === undefined ? undefined : `must implement EventStore (missing ${missing}())`
  }).optional()
}

export const streamingSchema = pluginSchema(streamingShape)

export type McpStreamingOptions = SectionInput<typeof streamingShape>

export interface CheckedStreamingOptions {
  settings: StreamingOptions
  retention: z.output<typeof retentionSchema>
  store: EventStore | undefined
  drainTimeoutMs: number
}

/** `pluginTimeout` is the host's: the drain must fit in it. */
export function checkStreamingOptions (options: McpStreamingOptions, pluginTimeout: number): CheckedStreamingOptions {
  const { store, retention, drainTimeoutMs, prefix: _p, logLevel: _l, logSerializers: _s, ...settings } = parseOptions(streamingSchema, '', options)
  return { store, retention, settings, drainTimeoutMs: drainFor('drainTimeoutMs', drainTimeoutMs, pluginTimeout) }
}
