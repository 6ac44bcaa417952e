/**
 * The live side of resumable streams: which logged streams each session has in this process, the
 * clients attached to them, and one shared timer for keep-alives, polling closes and forgetting
 * finished streams (no timer per stream).
 */
import { randomBytes } from 'node:crypto'
import type { EventStore, SharedLog } from '../events/store.ts'
import type { JsonRpcId } from '../jsonrpc.ts'
import { GatewayErrors } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { ClientWriter, type Sink, type WriterEnd } from './client-writer.ts'
import { LiveStream, type LiveStreamContext } from './live-stream.ts'
import { GET_STREAM_ID, type StreamingOptions } from './options.ts'
import { coordinate } from './coordinate.ts'

export { GET_STREAM_ID, STREAMING_DEFAULTS, type StreamingOptions } from './options.ts'

/** How many ended session ids the hub remembers (see `StreamHub.ended`): ~0.5 MiB at most. */
const ENDED_SESSIONS_KEPT = 10_000

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
  /** Read by coordinate.ts too. */
  readonly sessions = new Map<string, SessionStreams>()
  private readonly writers = new Set<ClientWriter>()
  /** Events written to clients from the log (resumptions), since start. */
  readonly counts = { replayed: 0 }
  readonly now: () => number
  readonly log: Logger
  private readonly tag = randomBytes(3).toString('hex')
  /** This instance's id in a shared log's stream leases. */
  readonly instanceId = randomBytes(8).toString('hex')
  private counter = 0
  private timer: NodeJS.Timeout | undefined
  /** The running round of lease renewals and follower checks (shared log), if any. */
  private coordinating: Promise<void> | undefined
  /** Detached GET streams past their TTL, to stop unless a client follows them elsewhere. */
  readonly expiredGets = new Set<string>()
  /**
   * Sessions ended here lately, oldest first: an answer that starts after its session's DELETE
   * (the upstream was slow to answer) must not create the session's log again. Bounded: past
   * the cap the oldest go, and by then a straggler is long answered.
   */
  private readonly ended = new Set<string>()

  /** Told, at each sweep, which sessions have a client attached: those are in use, not idle. */
  onActiveSessions: ((sessionIds: Set<string>) => void) | undefined = undefined

  constructor (store: EventStore, options: StreamingOptions, log: Logger, now: () => number = Date.now) {
    this.store = store
    this.options = options
    this.log = log
    this.now = now
    const periods = [options.keepAliveMs, options.pollAfterMs, options.slowReaderTimeoutMs, 5000]
    if (store.shared !== undefined) periods.push(options.leaseMs / 1.5)
    const period = Math.max(50, Math.min(...periods.filter((ms) => ms > 0)) / 2)
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
    return { store: this.store, owner: this.instanceId, now: this.now, log, counts: this.counts, retryMs: this.options.retryMs }
  }

  /** Whether the session ended here lately (its log is gone: nothing may create it again). */
  hasEnded (sessionId: string): boolean {
    return this.ended.has(sessionId)
  }

  /**
   * A new logged stream for one POST's answer. Ids are unique across gateway instances. For a
   * session that ended meanwhile, the stream is born closed: it logs nothing, and its client's
   * stream ends at once.
   */
  openPostStream (sessionId: string, log: Logger, pending?: Iterable<JsonRpcId>): LiveStream {
    const id = `${this.tag}${(this.counter++).toString(36)}`
    const stream = new LiveStream(this.context(log), sessionId, id)
    if (this.ended.has(sessionId)) {
      void stream.close()
      return stream
    }
    this.streamsOf(sessionId).posts.set(id, stream)
    const shared = this.store.shared
    if (shared !== undefined) stream.claiming = true
    // Not awaited: the appends that follow go down the same connection after it (with it, when
    // the first event comes at once).
    const opened = shared === undefined
      ? this.store.open(sessionId, id)
      : shared.claim(sessionId, id, this.instanceId, this.options.leaseMs, pending === undefined ? undefined : [...pending] as Array<string | number>, true)
        .then((mine) => {
          stream.onClaim(mine)
          // Held by another instance's lease (an id collision): never renew or release its lease.
          if (!mine) log.error({ stream: id }, 'another instance holds this stream id in the event log')
        }, (err: unknown) => {
          stream.onClaim(false)
          throw err
        })
    // Nothing of the stream, its priming event included, reaches the client before the log knows
    // the stream: a client cut off at once must be able to resume it on any instance.
    stream.after(opened.then(() => {}, (err: unknown) => { log.warn({ stream: id, err }, 'could not open a stream in the event log') }))
    return stream
  }

  /**
   * The session's GET stream in this process. With a shared log, `remote` is set when another
   * instance feeds it (this one only serves the log), and `resumeFrom` is the upstream's event id
   * to re-open the upstream stream from.
   */
  async getStream (sessionId: string, log: Logger): Promise<LiveStream> {
    const existing = this.sessions.get(sessionId)?.get
    if (existing !== undefined) return existing
    if (this.ended.has(sessionId)) throw new GatewayErrors.SESSION_NOT_FOUND()
    const shared = this.store.shared
    if (shared !== undefined) return this.sharedGetStream(shared, sessionId, log)
    const lastSeq = await this.store.lastSeq(sessionId, GET_STREAM_ID)
    // Another request may have made it while the store answered...
    // ...or the session ended while it answered.
    if (this.ended.has(sessionId)) throw new GatewayErrors.SESSION_NOT_FOUND()
    const streams = this.streamsOf(sessionId)
    if (streams.get === undefined) {
      streams.get = new LiveStream(this.context(log), sessionId, GET_STREAM_ID, lastSeq ?? 0)
      if (lastSeq === undefined) await this.store.open(sessionId, GET_STREAM_ID)
    }
    return streams.get
  }

  private async sharedGetStream (shared: SharedLog, sessionId: string, log: Logger): Promise<LiveStream> {
    const status = await shared.status(sessionId, GET_STREAM_ID)
    const mine = status?.owner === undefined || status.owner === this.instanceId
      ? await shared.claim(sessionId, GET_STREAM_ID, this.instanceId, this.options.leaseMs)
      : false
    if (this.ended.has(sessionId)) throw new GatewayErrors.SESSION_NOT_FOUND()
    const streams = this.streamsOf(sessionId)
    if (streams.get !== undefined) {
      // Another request made it meanwhile; a lease taken for nothing lapses or is renewed by it.
      return streams.get
    }
    const stream = new LiveStream(this.context(log), sessionId, GET_STREAM_ID, status?.lastSeq ?? 0)
    stream.resumeFrom = status?.upstreamEventId
    if (mine) stream.owned = true
    else this.follow(stream)
    streams.get = stream
    return stream
  }

  /** Serves a stream another instance feeds: its new events come through the shared log. */
  follow (stream: LiveStream): void {
    const shared = this.store.shared
    if (shared === undefined || stream.unwatch !== undefined) return
    stream.remote = true
    stream.unwatch = shared.watch(stream.sessionId, stream.id, (seq, done) => stream.follow(seq, done))
  }

  /** Registers a POST stream fed by another instance (a client resumed it here). */
  addRemotePost (sessionId: string, streamId: string, lastSeq: number, log: Logger): LiveStream {
    const stream = new LiveStream(this.context(log), sessionId, streamId, lastSeq)
    this.streamsOf(sessionId).posts.set(streamId, stream)
    this.follow(stream)
    return stream
  }

  findLive (sessionId: string, streamId: string): LiveStream | undefined {
    const streams = this.sessions.get(sessionId)
    if (streams === undefined) return undefined
    return streamId === GET_STREAM_ID ? streams.get : streams.posts.get(streamId)
  }

  /**
   * Before a JSON answer leaves: what the session's GET stream already received reaches the client
   * first, as it would on a direct connection. Undefined when there is nothing to wait for.
   */
  settle (sessionId: string): Promise<void> | undefined {
    return this.sessions.get(sessionId)?.get?.settle()
  }

  /** Whether an upstream reader feeds this session's GET stream. */
  hasUpstreamGet (sessionId: string): boolean {
    return this.sessions.get(sessionId)?.stopUpstreamGet !== undefined
  }

  /** The reader `stop` belongs to failed to open: the session has none (unless another took its place). */
  clearUpstreamGet (sessionId: string, stop: () => void): void {
    const streams = this.sessions.get(sessionId)
    if (streams?.stopUpstreamGet === stop) streams.stopUpstreamGet = undefined
  }

  setUpstreamGet (sessionId: string, stop: (() => void) | undefined): void {
    // A reader for a session that ended, or starting while the hub closes: stopped at once, or
    // it would live on and hold its connection.
    if (stop !== undefined && (this.ended.has(sessionId) || this.closed)) {
      stop()
      return
    }
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
      if (post.pending?.cancel(requestId) === true && post.pending.size === 0) post.stopUpstream?.()
    }
  }

  /**
   * Ends a session's streams, then forgets its log: a stream still finishing (an error for an
   * unanswered request, a resume upstream) must not write to the log after it is deleted.
   */
  async endSession (sessionId: string): Promise<void> {
    const streams = this.sessions.get(sessionId)
    this.sessions.delete(sessionId)
    this.expiredGets.delete(sessionId)
    this.ended.add(sessionId)
    if (this.ended.size > ENDED_SESSIONS_KEPT) this.ended.delete(this.ended.values().next().value as string)
    const closing: Array<Promise<void>> = []
    if (streams !== undefined) {
      streams.stopUpstreamGet?.()
      for (const stream of [streams.get, ...streams.posts.values()]) {
        if (stream === undefined) continue
        closing.push(stream.close())
        stream.stopUpstream?.()
        stream.unwatch?.()
        stream.writer?.end('session')
      }
    }
    // An append the store refused is logged by the stream itself; the log goes all the same.
    await Promise.allSettled(closing)
    await this.store.deleteSession(sessionId)
  }

  /** Shutdown began (`closeAll`): no upstream reader starts, no client stream stays open. */
  closed = false

  /** Work whose answer has not yet started (a POST sent upstream: it may become a stream). */
  private readonly tracked = new Set<Promise<unknown>>()

  /**
   * Shutdown's drain waits for `work` as for a stream still answering: an answer that turns into
   * a stream after the drain began must not be cut. Returns `work`.
   */
  track<T> (work: Promise<T>): Promise<T> {
    this.tracked.add(work)
    const forget = (): void => { this.tracked.delete(work) }
    work.then(forget, forget)
    return work
  }

  /** Whether some POST answer is still on its way (shutdown waits for those). */
  get answering (): boolean {
    if (this.tracked.size > 0) return true
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

  /**
   * Shutdown: every upstream reader stops, every lease is released (so another instance takes the
   * streams over at once), then every client stream ends with a `retry:` hint.
   */
  async closeAll (): Promise<void> {
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    const releases: Array<Promise<void>> = []
    const settling: Array<Promise<void>> = []
    for (const streams of this.sessions.values()) {
      streams.stopUpstreamGet?.()
      streams.stopUpstreamGet = undefined
      for (const stream of [streams.get, ...streams.posts.values()]) {
        if (stream === undefined) continue
        stream.stopping = true
        stream.stopUpstream?.()
        stream.unwatch?.()
        releases.push(stream.release(false).then(() => {}))
        const settled = stream.settle()
        if (settled !== undefined) settling.push(settled)
      }
    }
    await Promise.all(releases)
    await this.coordinating
    // A stream's first events (its priming event: the client's resume point) wait for the log; a
    // stream ended before them leaves its client nothing to resume from.
    await Promise.all(settling)
    for (const writer of [...this.writers]) writer.end('shutdown', this.options.retryMs)
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
        } else if (get.remote) {
          // Nobody here listens to a stream another instance feeds: nothing to keep.
          get.unwatch?.()
          streams.get = undefined
        } else if (now - streams.getDetachedAt >= detachedStreamTtlMs && streams.stopUpstreamGet !== undefined) {
          if (this.store.shared === undefined) this.stopGet(sessionId, streams)
          else this.expiredGets.add(sessionId)
        }
      }
      for (const [id, post] of streams.posts) {
        if (post.remote && post.writer === undefined) {
          post.unwatch?.()
          streams.posts.delete(id)
        }
      }
      if (streams.get === undefined && streams.posts.size === 0) this.sessions.delete(sessionId)
    }
    if (active.size > 0) this.onActiveSessions?.(active)
    if (this.store.shared !== undefined && this.coordinating === undefined) {
      this.coordinating = coordinate(this, this.store.shared)
        .catch((err: unknown) => { this.log.warn({ err }, 'stream coordination failed (event store unreachable?)') })
        .finally(() => { this.coordinating = undefined })
    }
  }

  stopGet (sessionId: string, streams: SessionStreams): void {
    this.log.debug({ sessionId }, 'stopped reading an abandoned upstream GET stream')
    streams.stopUpstreamGet?.()
    streams.stopUpstreamGet = undefined
    void streams.get?.release(false)
  }
}
