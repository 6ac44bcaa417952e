/**
 * The live side of resumable streams: which logged streams each session has in this process, the
 * clients attached to them, and one shared timer for keep-alives, polling closes and forgetting
 * finished streams (no timer per stream).
 */
import { randomBytes } from 'node:crypto'
import type { EventStore } from '../events/store.ts'
import type { JsonRpcId } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { ClientWriter, type Sink, type WriterEnd } from './client-writer.ts'
import { LiveStream, type LiveStreamContext } from './live-stream.ts'

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
}

export const STREAMING_DEFAULTS: StreamingOptions = {
  retryMs: 1000,
  keepAliveMs: 15_000,
  highWaterMark: 1024 * 1024,
  slowReaderTimeoutMs: 10_000,
  pollAfterMs: 0,
  detachedStreamTtlMs: 300_000
}

/** The id of every session's server-to-client (GET) stream. */
export const GET_STREAM_ID = 'g'

export interface SessionStreams {
  get: LiveStream | undefined
  /** Stops the upstream GET reader, if one runs. */
  stopUpstreamGet: (() => void) | undefined
  /** When the GET stream's last client left (for the detached TTL). */
  getDetachedAt: number | undefined
  posts: Map<string, LiveStream>
}

export class StreamHub {
  readonly store: EventStore
  readonly options: StreamingOptions
  private readonly sessions = new Map<string, SessionStreams>()
  private readonly writers = new Set<ClientWriter>()
  /** Events written to clients from the log (resumptions), since start. */
  readonly counts = { replayed: 0 }
  private readonly now: () => number
  private readonly log: Logger
  private readonly tag = randomBytes(3).toString('hex')
  private counter = 0
  private timer: NodeJS.Timeout | undefined

  /** Told, at each sweep, which sessions have a client attached: those are in use, not idle. */
  onActiveSessions: ((sessionIds: Set<string>) => void) | undefined = undefined

  constructor (store: EventStore, options: StreamingOptions, log: Logger, now: () => number = Date.now) {
    this.store = store
    this.options = options
    this.log = log
    this.now = now
    const period = Math.max(50, Math.min(...[options.keepAliveMs, options.pollAfterMs, options.slowReaderTimeoutMs, 5000].filter((ms) => ms > 0)) / 2)
    this.timer = setInterval(() => this.sweep(), period)
    this.timer.unref()
  }

  /** Open client streams, for metrics and tests. */
  get openWriters (): number {
    return this.writers.size
  }

  private streamsOf (sessionId: string): SessionStreams {
    let streams = this.sessions.get(sessionId)
    if (streams === undefined) {
      streams = { get: undefined, stopUpstreamGet: undefined, getDetachedAt: undefined, posts: new Map() }
      this.sessions.set(sessionId, streams)
    }
    return streams
  }

  private context (log: Logger): LiveStreamContext {
    return { store: this.store, now: this.now, log, counts: this.counts }
  }

  /** A new logged stream for one POST's answer. Ids are unique across gateway instances. */
  openPostStream (sessionId: string, log: Logger): LiveStream {
    const id = `${this.tag}${(this.counter++).toString(36)}`
    const stream = new LiveStream(this.context(log), sessionId, id)
    this.streamsOf(sessionId).posts.set(id, stream)
    void this.store.open(sessionId, id)
    return stream
  }

  async getStream (sessionId: string, log: Logger): Promise<LiveStream> {
    const existing = this.sessions.get(sessionId)?.get
    if (existing !== undefined) return existing
    const lastSeq = await this.store.lastSeq(sessionId, GET_STREAM_ID)
    // Another request may have made it while the store answered.
    const streams = this.streamsOf(sessionId)
    if (streams.get === undefined) {
      streams.get = new LiveStream(this.context(log), sessionId, GET_STREAM_ID, lastSeq ?? 0)
      if (lastSeq === undefined) await this.store.open(sessionId, GET_STREAM_ID)
    }
    return streams.get
  }

  findLive (sessionId: string, streamId: string): LiveStream | undefined {
    const streams = this.sessions.get(sessionId)
    if (streams === undefined) return undefined
    return streamId === GET_STREAM_ID ? streams.get : streams.posts.get(streamId)
  }

  /** Whether an upstream reader feeds this session's GET stream. */
  hasUpstreamGet (sessionId: string): boolean {
    return this.sessions.get(sessionId)?.stopUpstreamGet !== undefined
  }

  setUpstreamGet (sessionId: string, stop: (() => void) | undefined): void {
    this.streamsOf(sessionId).stopUpstreamGet = stop
  }

  /** A writer for a client response, registered for keep-alives and shutdown. */
  writer (sink: Sink, streamId: string, afterSeq: number, onEnd?: (writer: ClientWriter, why: WriterEnd) => void): ClientWriter {
    const writer = new ClientWriter(sink, streamId, afterSeq, {
      highWaterMark: this.options.highWaterMark,
      now: this.now(),
      onEnd: (w, why) => {
        this.writers.delete(w)
        onEnd?.(w, why)
      }
    })
    this.writers.add(writer)
    return writer
  }

  /**
   * The client cancelled a request: a stream left with nothing to answer stops reading the
   * upstream (which, per the spec, sends nothing more for it) and ends.
   */
  cancelRequest (sessionId: string, requestId: JsonRpcId): void {
    const streams = this.sessions.get(sessionId)
    if (streams === undefined) return
    for (const post of streams.posts.values()) {
      if (post.pending?.delete(requestId) === true && post.pending.size === 0) post.stopUpstream?.()
    }
  }

  /** Ends a session's streams and forgets its log. */
  async endSession (sessionId: string): Promise<void> {
    const streams = this.sessions.get(sessionId)
    this.sessions.delete(sessionId)
    if (streams !== undefined) {
      streams.stopUpstreamGet?.()
      streams.get?.writer?.end('session')
      for (const post of streams.posts.values()) {
        post.stopUpstream?.()
        post.writer?.end('session')
      }
    }
    await this.store.deleteSession(sessionId)
  }

  /** Whether some POST answer is still on its way (shutdown waits for those). */
  get answering (): boolean {
    for (const streams of this.sessions.values()) {
      for (const post of streams.posts.values()) if (!post.done) return true
    }
    return false
  }

  /** Resolves when no POST answer is on its way, or after `ms`. */
  async drain (ms: number): Promise<boolean> {
    const until = this.now() + ms
    while (this.answering) {
      if (this.now() >= until) return false
      await new Promise((resolve) => setTimeout(resolve, 25).unref())
    }
    return true
  }

  /** Shutdown: every client stream ends with a `retry:` hint, every upstream reader stops. */
  closeAll (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (const writer of [...this.writers]) writer.end('shutdown', this.options.retryMs)
    for (const streams of this.sessions.values()) {
      streams.stopUpstreamGet?.()
      for (const post of streams.posts.values()) post.stopUpstream?.()
    }
  }

  private sweep (): void {
    const now = this.now()
    const { keepAliveMs, pollAfterMs, detachedStreamTtlMs, retryMs } = this.options
    const active = new Set<string>()
    for (const writer of [...this.writers]) {
      if (writer.dropIfStalled(now, this.options.slowReaderTimeoutMs)) continue
      if (pollAfterMs > 0 && writer.streamId !== GET_STREAM_ID && now - writer.attachedAt >= pollAfterMs && writer.hasResumePoint) {
        writer.end('poll', retryMs)
      } else if (keepAliveMs > 0 && now - writer.lastWriteAt >= keepAliveMs) {
        writer.keepAlive(now)
      }
    }
    for (const [sessionId, streams] of this.sessions) {
      for (const [id, post] of streams.posts) {
        // A finished POST stream stays resumable from the log; the live object is not needed.
        if (post.done && post.writer === undefined) streams.posts.delete(id)
      }
      for (const post of streams.posts.values()) if (post.writer !== undefined) active.add(sessionId)
      const get = streams.get
      if (get !== undefined) {
        if (get.writer !== undefined) {
          active.add(sessionId)
          streams.getDetachedAt = undefined
        } else if (streams.getDetachedAt === undefined) {
          streams.getDetachedAt = now
        } else if (now - streams.getDetachedAt >= detachedStreamTtlMs && streams.stopUpstreamGet !== undefined) {
          this.log.debug({ sessionId }, 'stopped reading an abandoned upstream GET stream')
          streams.stopUpstreamGet()
          streams.stopUpstreamGet = undefined
        }
      }
      if (streams.get === undefined && streams.posts.size === 0) this.sessions.delete(sessionId)
    }
    if (active.size > 0) this.onActiveSessions?.(active)
  }
}
