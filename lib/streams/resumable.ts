/**
 * Resumable streams for one upstream: a session's POST answers and its server-to-client (GET)
 * stream go through the event log, so a client cut off at any point resumes with `Last-Event-ID`
 * and loses and duplicates nothing, whether or not the upstream itself can resume.
 */
import type { Caller } from '../upstream-auth/credentials.ts'
import { UpstreamGetReader } from './upstream-get.ts'
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { formatEventId, parseEventId, type SharedLog, type StreamStatus } from '../events/store.ts'
import { errorResponse, type JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import { acceptEventData } from '../relay/messages.ts'
import { PendingRequests } from '../relay/pending.ts'
import type { SessionRecord } from '../session/store.ts'
import type { Upstream } from '../upstream/types.ts'
import type { Sink } from './client-writer.ts'
import { GET_STREAM_ID, type StreamHub } from './hub.ts'
import type { LiveStream } from './live-stream.ts'
import { pumpEvents, type PumpResult } from './pump.ts'
import { delay, GET_REOPEN_TRIES, POST_RESUME_TRIES, retryDelay } from './retry.ts'
import type { UpstreamEvents } from '../upstream/events.ts'
import { SSE_HEADERS, type LoggedAnswer, type RefusedAnswer } from '../exchange/answer.ts'


/** Priming events (an id with empty data) arrived with 2025-11-25; older clients may choke on them. */
function primes (session: SessionRecord): boolean {
  return session.protocolVersion >= '2025-11-25'
}

export interface PostStreamOptions {
  session: SessionRecord
  source: UpstreamEvents
  headers: Record<string, string>
  pending: PendingRequests
  onMessage: ((message: JsonRpcMessage) => void) | undefined
  /** The client left before holding any resume point: cancel its requests upstream. */
  abandon: () => void
  /** Called once the answer is complete (logged and delivered, or failed). */
  onDone?: () => void
  /** Interceptors for the messages of this answer. */
  filter?: LiveStream['filter']
  /** Answers made by the gateway for part of a batch, sent first. */
  prelude?: JsonRpcMessage[]
  log: Logger
}

export class ResumableStreams {
  readonly hub: StreamHub
  private readonly upstream: Upstream
  /** An upstream's refusal, as the client gets it (a session it forgot ends ours and throws). */
  private readonly failure: (err: unknown, session: SessionRecord) => Promise<RefusedAnswer>

  /** Sees each message of a session's GET stream (metrics). */
  private readonly observe: ((message: JsonRpcMessage, session?: string) => void) | undefined

  /** Ends a session whose upstream session is gone. */
  private readonly gone: (session: SessionRecord) => Promise<void>

  constructor (hub: StreamHub, upstream: Upstream, failure: ResumableStreams['failure'], gone: ResumableStreams['gone'], observe?: (message: JsonRpcMessage, session?: string) => void) {
    this.hub = hub
    this.upstream = upstream
    this.failure = failure
    this.gone = gone
    this.observe = observe
    this.reader = new UpstreamGetReader({ hub, upstream, failure, gone, observe })
  }

  /** The upstream readers behind sessions' GET streams. */
  private readonly reader: UpstreamGetReader

  /**
   * A POST's SSE answer, through the log: the stream is registered now (shutdown waits for it),
   * fed once the client's response is attached.
   */
  post (options: PostStreamOptions): LoggedAnswer {
    const stream = this.hub.openPostStream(options.session.id, options.log, options.pending)
    // Owned by the stream from now, so a cancellation or shutdown before the attach stops it too.
    stream.pending = options.pending
    stream.filter = options.filter
    stream.stopUpstream = () => options.source.destroy()
    return {
      kind: 'logged',
      headers: Object.assign({}, SSE_HEADERS, options.headers),
      attach: async (sink) => { this.feedPost(stream, sink, options) },
      release: () => {
        options.abandon()
        options.pending.clear()
        void stream.finish().finally(options.onDone)
      }
    }
  }

  private feedPost (stream: LiveStream, sink: Sink, options: PostStreamOptions): void {
    const { session, log } = options
    const writer = this.hub.writer(sink, stream.id, 0, (w, why) => {
      stream.detach(w)
      if (why === 'client' && !w.hasResumePoint && !stream.done) options.abandon()
    })
    const source = options.source
    if (stream.closed) {
      // The session ended while the upstream was still to answer (the forwarder checks first; this
      // is the hub's own guard): nobody is left to answer.
      source.destroy()
      writer.end('session')
      options.onDone?.()
      return
    }
    stream.writer = writer
    stream.after(() => writer.start(this.hub.options.retryMs, primes(session), Date.now()))
    for (const message of options.prelude ?? []) stream.publish(JSON.stringify(message))
    pumpEvents({ source, stream, pending: options.pending, onMessage: options.onMessage, log, filter: options.filter })
      .then((result) => this.completePost(stream, session, options.pending, options.onMessage, log, result))
      // Nobody awaits this: a store or upstream failure past the stream's own handling is logged.
      .catch((err: unknown) => { log.error({ stream: stream.id, err }, 'a POST stream failed after its answer started') })
      .finally(options.onDone)
  }

  /**
   * After the upstream stream ended or broke: while requests are unanswered, resume it upstream
   * from its last event id; what stays unanswered gets an error; then the stream is complete.
   */
  private async completePost (stream: LiveStream, session: SessionRecord, pending: PendingRequests, onMessage: PostStreamOptions['onMessage'], log: Logger, first: PumpResult): Promise<void> {
    let result = first
    let attempts = 0
    // A request that timed out is over: resuming its stream would only wait again.
    const timedOut = (): boolean => (result.error as { code?: string } | undefined)?.code === 'MCP_GW_UPSTREAM_TIMEOUT'
    while (pending.size > 0 && result.lastUpstreamEventId !== undefined && attempts < POST_RESUME_TRIES && !stream.stopping && !stream.closed && !timedOut()) {
      attempts++
      const res = await this.reader.upstreamGet(session, result.lastUpstreamEventId, log)
      if (res === 'gone') break
      if (res !== undefined) {
        const source = res
        stream.stopUpstream = () => source.destroy()
        const owed = pending.size
        const next = await pumpEvents({ source, stream, pending, onMessage, log, filter: stream.filter, untilAnswered: true })
        result = { error: next.error, lastUpstreamEventId: next.lastUpstreamEventId ?? result.lastUpstreamEventId }
        // Only an answer counts as progress: an upstream that re-opens the stream and ends it
        // again without one must not get a fresh round of tries (nor tries with no wait).
        if (pending.size < owed) attempts = 0
      }
      // No wait after the last try: the requests get their errors at once.
      if (pending.size > 0 && attempts > 0 && attempts < POST_RESUME_TRIES) await delay(retryDelay(attempts - 1))
    }
    // Shutting down on a shared log: the lease is released, another instance answers.
    if (stream.stopping && pending.size > 0 && this.hub.store.shared !== undefined) return
    // The session ended: nobody is left to answer, and its log is gone.
    if (stream.closed) return
    if (pending.size > 0) {
      const err = timedOut()
        ? result.error as Error
        : result.error === undefined && result.lastUpstreamEventId === undefined
          ? new GatewayErrors.UPSTREAM_STREAM_ENDED(this.upstream.name)
          : new GatewayErrors.UPSTREAM_UNAVAILABLE(this.upstream.name)
      const { code, message } = toJsonRpcError(err).body.error
      for (const id of pending) {
        const answer = errorResponse(id, code, message)
        onMessage?.(answer)
        stream.publish(JSON.stringify(answer))
      }
      log.warn({ upstream: this.upstream.name, unanswered: pending.size }, 'upstream stream ended before answering')
      pending.clear()
    }
    await stream.finish()
  }

  /**
   * A POST stream whose instance is gone (shared log): this instance claims it, works out from
   * the log which requests are still unanswered, and resumes the upstream stream from the last
   * upstream event id logged (or answers them with an error when the upstream cannot resume).
   */
  private async takeOverPost (session: SessionRecord, stream: LiveStream, status: StreamStatus, log: Logger): Promise<void> {
    const shared = this.hub.store.shared as SharedLog
    if (!await shared.claim(session.id, stream.id, this.hub.instanceId, this.hub.options.leaseMs)) return
    stream.own(status.lastSeq)
    const pending = new PendingRequests(status.pending)
    const logged = await this.hub.store.replay(session.id, stream.id, 0)
    if (logged.kind === 'events') for (const event of logged.events) acceptEventData(event.data, pending, undefined)
    stream.pending = pending
    // The instance feeding the stream died, not the upstream's stream: where the upstream cannot
    // resume, the unanswered requests get "upstream unavailable" (-32060), never "ended" (-32065).
    const lost = new GatewayErrors.UPSTREAM_UNAVAILABLE(this.upstream.name)
    await this.completePost(stream, session, pending, undefined, log, { error: lost, lastUpstreamEventId: status.upstreamEventId })
  }

  /** A GET stream whose instance is gone (shared log): re-open the upstream stream here. */
  private async takeOverGet (session: SessionRecord, stream: LiveStream, status: StreamStatus, log: Logger): Promise<void> {
    const shared = this.hub.store.shared as SharedLog
    if (!await shared.claim(session.id, GET_STREAM_ID, this.hub.instanceId, this.hub.options.leaseMs)) return
    stream.own(status.lastSeq)
    let refused: boolean
    try {
      refused = await this.reader.start(session, stream, {}, log, status.upstreamEventId) !== undefined
    } catch (err) {
      log.warn({ err }, 'could not re-open the upstream GET stream')
      refused = true
    }
    if (refused) {
      await stream.release(false)
      stream.writer?.end('done', this.hub.options.retryMs)
    }
  }

  /** A fresh GET: the session's server-to-client stream, from now on. */
  async get (session: SessionRecord, clientHeaders: Record<string, string | string[] | undefined>, log: Logger, filter?: LiveStream['filter'], caller?: Caller): Promise<RefusedAnswer | LoggedAnswer> {
    const stream = await this.hub.getStream(session.id, log)
    if (filter !== undefined) stream.filter = filter
    const refused = await this.feedGet(session, stream, clientHeaders, log, caller)
    if (refused !== undefined) return refused
    // From here on: what the upstream sends before the client's response is attached is its too.
    const from = stream.lastSeq
    return {
      kind: 'logged',
      headers: Object.assign({}, SSE_HEADERS),
      // The session's GET stream lives on without a client: nothing to give up.
      release: () => {},
      attach: async (sink) => {
        const writer = this.hub.writer(sink, GET_STREAM_ID, from, (w) => stream.detach(w))
        writer.start(this.hub.options.retryMs, primes(session), Date.now())
        // Answered while the gateway closed (its reader was stopped as it opened): shutdown has
        // ended the streams already, so this one ends here, with the same hint to come back.
        if (this.hub.closed) {
          writer.end('shutdown', this.hub.options.retryMs)
          return
        }
        await stream.attach(writer)
      }
    }
  }

  /** A GET with `Last-Event-ID`: replays that stream after the id, then continues live. */
  async resume (session: SessionRecord, lastEventId: string, clientHeaders: Record<string, string | string[] | undefined>, log: Logger, filter?: LiveStream['filter'], caller?: Caller): Promise<RefusedAnswer | LoggedAnswer> {
    const parsed = parseEventId(lastEventId)
    if (parsed === undefined) throw new GatewayErrors.UNKNOWN_EVENT_ID(JSON.stringify(lastEventId))
    const { streamId, seq } = parsed
    let stream = this.hub.findLive(session.id, streamId)
    if (stream === undefined && streamId === GET_STREAM_ID) stream = await this.hub.getStream(session.id, log)
    // Check before answering, so a bad id gets an HTTP error rather than an empty stream.
    const check = await this.hub.store.replay(session.id, streamId, seq)
    if (check.kind === 'trimmed') throw new GatewayErrors.EVENTS_TRIMMED(lastEventId)
    if (check.kind === 'unknown' || (stream !== undefined && seq > stream.lastSeq)) {
      throw new GatewayErrors.UNKNOWN_EVENT_ID(lastEventId)
    }
    if (stream !== undefined && filter !== undefined) stream.filter = filter
    if (stream !== undefined && streamId === GET_STREAM_ID) {
      const refused = await this.feedGet(session, stream, clientHeaders, log, caller)
      if (refused !== undefined) return refused
    }
    let orphan: StreamStatus | undefined
    const shared = this.hub.store.shared
    if (stream === undefined && shared !== undefined) {
      // A POST stream another instance feeds (or fed, until it died): follow it from the log.
      const status = await shared.status(session.id, streamId)
      if (status !== undefined && !status.done) {
        const remote = this.hub.addRemotePost(session.id, streamId, status.lastSeq, log)
        if (filter !== undefined) remote.filter = filter
        remote.takeOver = (now) => this.takeOverPost(session, remote, now, log)
        if (status.owner === undefined) orphan = status
        stream = remote
      }
    }
    const live = stream
    return {
      kind: 'logged',
      headers: Object.assign({}, SSE_HEADERS),
      // Nothing was attached yet: the stream, if live, goes on for the next resume.
      release: () => {},
      attach: async (sink) => {
        if (live === undefined) {
          // A finished stream: the log is all there is.
          const writer = this.hub.writer(sink, streamId, seq)
          writer.start(this.hub.options.retryMs, false, Date.now())
          this.hub.counts.replayed += await writer.replay(check.events, Date.now)
          writer.end('done')
          return
        }
        const writer = this.hub.writer(sink, streamId, seq, (w) => live.detach(w))
        writer.hasResumePoint = true
        writer.start(this.hub.options.retryMs, false, Date.now())
        const attached = await live.attach(writer)
        if (attached !== 'ok') writer.end('done')
        if (orphan !== undefined && live.takeOver !== undefined) {
          live.takeOver(orphan).catch((err: unknown) => { log.warn({ stream: streamId, err }, 'stream take-over failed') })
        }
        log.debug({ stream: streamId, after: formatEventId(streamId, seq) }, 'stream resumed')
      }
    }
  }

  /**
   * Makes sure something feeds the session's GET stream: this instance's upstream reader, or
   * (shared log) the instance that holds it, which this one follows and takes over if it dies.
   */
  private async feedGet (session: SessionRecord, stream: LiveStream, clientHeaders: Record<string, string | string[] | undefined>, log: Logger, caller: Caller | undefined): Promise<RefusedAnswer | undefined> {
    if (stream.remote) {
      stream.takeOver ??= (status) => this.takeOverGet(session, stream, status, log)
      return undefined
    }
    if (this.hub.hasUpstreamGet(session.id)) return undefined
    try {
      const refused = await this.reader.start(session, stream, clientHeaders, log, stream.resumeFrom, caller)
      if (refused !== undefined) await stream.release(false)
      return refused
    } catch (err) {
      await stream.release(false)
      throw err
    }
  }

}
