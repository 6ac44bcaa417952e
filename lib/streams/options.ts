/** The options of resumable streams (the streaming plugin's, after its checks), and their defaults. */
export interface StreamingOptions {
  /**
   * `retry:` sent at the start of every stream, in ms: how soon a cut-off client reconnects.
   * @default 1000
   */
  retryMs: number
  /**
   * SSE comment sent on a stream idle this long, so load balancers keep it open. 0 turns it off.
   * @default 15000
   */
  keepAliveMs: number
  /**
   * Bytes a client may leave unread. Past it, the gateway stops reading the upstream for that
   * stream until the client catches up, which bounds gateway memory per stream.
   * @default 1 MiB
   */
  highWaterMark: number
  /**
   * A client that stays past the high-water mark this long is dropped (it resumes from the log),
   * and the upstream is read into the log again.
   * @default 10000
   */
  slowReaderTimeoutMs: number
  /**
   * Close POST response streams this long after they open, so the client polls with `GET` and
   * `Last-Event-ID` (2025-11-25 clients). 0 keeps them open until the answer.
   * @default 0
   */
  pollAfterMs: number
  /**
   * A session's server-to-client stream is kept reading (and logging) from the upstream this long
   * after its client went away, so what the upstream sends meanwhile is there on resume.
   * @default 300000
   */
  detachedStreamTtlMs: number
  /**
   * With a log shared by several instances (Redis): how long the instance feeding a stream holds
   * it without renewing. When an instance dies, its streams' clients wait this long on another
   * instance before it takes the streams over. Renewed three times per lease.
   * @default 6000
   */
  leaseMs: number
}

export const STREAMING_DEFAULTS: StreamingOptions = {
  retryMs: 1000,
  keepAliveMs: 15_000,
  highWaterMark: 1024 * 1024,
  slowReaderTimeoutMs: 10_000,
  pollAfterMs: 0,
  detachedStreamTtlMs: 300_000,
  leaseMs: 6000
}

/** The id of every session's server-to-client (GET) stream. */
export const GET_STREAM_ID = 'g'
