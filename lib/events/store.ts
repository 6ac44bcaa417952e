/**
 * The gateway's event log: every SSE event sent to a client on a resumable stream is appended here
 * first and written second, so a client that reconnects with `Last-Event-ID` gets exactly what it
 * missed. All methods are async and values plain JSON, so a Redis Streams version drops in.
 */

export interface StoredEvent {
  /** Position in its stream, from 1, without gaps. */
  seq: number
  /** The SSE `data` (a JSON-RPC message as text). */
  data: string
  /** The upstream's own event id for this event, when it gave one (never shown to clients). */
  upstreamEventId?: string
  /** Epoch milliseconds of the append. */
  at: number
}

export type ReplayResult =
  /** Events after the asked position (possibly none). */
  | { kind: 'events', events: StoredEvent[] }
  /** No such stream in this session (never existed, another session's, or deleted). */
  | { kind: 'unknown' }
  /** The stream exists but events after the asked position were trimmed away. */
  | { kind: 'trimmed' }

export interface EventStore {
  /**
   * Appends the event with sequence number `event.seq` (the caller numbers its streams, and sends
   * appends in order; an event already logged at its position is taken as done). A shared log
   * refuses one that arrives before an earlier event (retryable) unless `anyPosition` (a retry:
   * every event before it is logged or given up), and one from an `owner` while another owner's
   * lease holds the stream; an error with `final: true` is not worth retrying.
   */
  append (sessionId: string, streamId: string, event: StoredEvent, options?: AppendOptions): Promise<void>
  /** Declares a stream (before its first event), so a replay from position 0 knows it. */
  open (sessionId: string, streamId: string): Promise<void>
  replay (sessionId: string, streamId: string, afterSeq: number): Promise<ReplayResult>
  /**
   * The last sequence number appended to a stream (0 when opened but empty), or undefined for an
   * unknown stream: where a process that did not write it (a restart, another instance) goes on.
   */
  lastSeq (sessionId: string, streamId: string): Promise<number | undefined>
  deleteSession (sessionId: string): Promise<void>
  /** Events and bytes held (and events evicted by a global budget, where there is one), for metrics and tests. */
  stats (): Promise<{ events: number, bytes: number, streams: number, evicted?: number }>
  close (): Promise<void>
  /** Present when the log is shared by several gateway instances (Redis): see `SharedLog`. */
  readonly shared?: SharedLog
}

export interface AppendOptions {
  /** Every event before this one is logged or given up: take it wherever the stream stands. */
  anyPosition?: boolean
  /** The instance feeding the stream (shared log): refused while another owner's lease holds it. */
  owner?: string
}

/** What the log knows of a stream beyond its events. */
export interface StreamStatus {
  lastSeq: number
  /** The instance feeding the stream from its upstream, while its lease lasts. */
  owner: string | undefined
  /** No more events will come. */
  done: boolean
  /** The upstream's last event id on this stream: where another instance resumes it upstream. */
  upstreamEventId: string | undefined
  /** Requests the stream had to answer when it was opened (POST streams). */
  pending: Array<string | number>
}

/**
 * Coordination of instances sharing one log. Exactly one instance feeds a stream from its
 * upstream (it holds a lease, renewed while it lives); any other instance serves that stream's
 * clients from the log, told of new events by `watch`, and takes the stream over when the lease
 * lapses (its owner died) or is released (its owner shut down).
 */
export interface SharedLog {
  /**
   * Declares the stream (as `open`) and claims it for `owner` for `leaseMs`. Resolves false when
   * another owner's lease holds it. `soon`: the stream's first event is on its way (a new POST
   * stream's): the log may hold the claim a moment to write the two together.
   */
  claim (sessionId: string, streamId: string, owner: string, leaseMs: number, pending?: Array<string | number>, soon?: boolean): Promise<boolean>
  /** Renews the leases of streams `owner` feeds, and marks streams followed (a client listens here). */
  renew (owner: string, leaseMs: number, owned: StreamRef[], followed: StreamRef[]): Promise<void>
  /**
   * Drops `owner`'s lease; `done` marks the stream complete. With `lastSeq`, only once every
   * event up to it is logged: resolves false (and changes nothing) while one is still to land.
   */
  release (sessionId: string, streamId: string, owner: string, done: boolean, lastSeq?: number): Promise<boolean>
  /** Records the upstream's event id for a position that holds no event (a priming event). */
  noteUpstreamEventId (sessionId: string, streamId: string, upstreamEventId: string): Promise<void>
  /** Undefined for an unknown stream. */
  status (sessionId: string, streamId: string): Promise<StreamStatus | undefined>
  /** Whether a client listens to the stream through some instance (renewed by `renew`). */
  followed (sessionId: string, streamId: string): Promise<boolean>
  /**
   * Calls `listener` with the new last position after appends by any instance, and with `done`
   * when the stream completes. Best effort
   * (notifications sent while this instance was disconnected are lost): followers poll too.
   */
  watch (sessionId: string, streamId: string, listener: (seq: number, done: boolean) => void): () => void
}

export type StreamRef = readonly [sessionId: string, streamId: string]

export interface Retention {
  /**
   * Most events kept per stream; older ones are trimmed first.
   * @default 10000
   */
  maxEventsPerStream: number
  /**
   * Most bytes of event data kept per session, across its streams; oldest events go first.
   * @default 8 MiB
   */
  maxBytesPerSession: number
  /**
   * Events older than this are trimmed.
   * @default 600000 ms (10 minutes)
   */
  maxAgeMs: number
  /**
   * Most bytes of event data kept by the in-memory log across all sessions: past it the oldest
   * sessions' oldest events go first (a client resuming from one gets 410 `-32067`). Bounds the
   * gateway's memory whatever the session count (without it, 10,000 sessions x 8 MiB). The Redis
   * log ignores it: bound Redis with its own `maxmemory`.
   * @default 268435456 (256 MiB)
   */
  maxBytesTotal: number
}

export const RETENTION_DEFAULTS: Retention = {
  maxEventsPerStream: 10_000,
  maxBytesPerSession: 8 * 1024 * 1024,
  maxAgeMs: 600_000,
  maxBytesTotal: 256 * 1024 * 1024
}

/**
 * Event ids as clients see them: `<stream>_<seq>`. Opaque to clients; they encode the stream and
 * the position, and mean something only within the session that issued them.
 */
export function formatEventId (streamId: string, seq: number): string {
  return `${streamId}_${seq}`
}

const EVENT_ID = /^([A-Za-z0-9-]{1,64})_(0|[1-9][0-9]{0,15})$/

export function parseEventId (value: string): { streamId: string, seq: number } | undefined {
  const match = EVENT_ID.exec(value)
  if (match === null) return undefined
  return { streamId: match[1] as string, seq: Number(match[2]) }
}
