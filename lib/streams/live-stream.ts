/**
 * A logged stream: events are numbered, appended to the event store, and only then written to the
 * attached client, if any. A client attaching after a position first gets the log from there,
 * then the live events, each exactly once and in order.
 */
import type { MessageFilter } from '../interceptors/apply.ts'
import type { EventStore, StoredEvent, StreamStatus } from '../events/store.ts'
import type { JsonRpcId } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { PendingRequests } from '../relay/pending.ts'
import type { ClientWriter } from './client-writer.ts'

export interface LiveStreamContext {
  store: EventStore
  /** This instance's id in a shared log's leases. */
  owner: string
  now: () => number
  log: Logger
  /** Shared counters (metrics). */
  counts: { replayed: number }
  /** `retry:` for a client whose stream ends so that it resumes. */
  retryMs: number
}

/**
 * How long an append is retried while the store is away before the event is delivered unlogged:
 * short, so an answer is late by a moment rather than held for the length of an outage.
 */
const APPEND_RETRY_MS = 2000

export class LiveStream {
  readonly sessionId: string
  readonly id: string
  /** Last sequence number handed out. */
  private seq = 0
  /** Last sequence number whose append has completed (events up to it can be replayed). */
  private appended = 0
  private chain: Promise<void> = Promise.resolve()
  /** Events published and not yet delivered (their appends are under way), and work run `after`. */
  private inFlight = 0
  writer: ClientWriter | undefined = undefined
  /** No more events will come (a POST stream whose answer was logged, or a closed session). */
  done = false
  /** Requests this stream still has to answer (POST streams). */
  pending: PendingRequests | undefined = undefined
  /** Stops reading the upstream (client cancelled every request, session ended, shutdown). */
  stopUpstream: (() => void) | undefined = undefined
  /**
   * Shared log only: another instance feeds this stream; this one serves its clients from the log
   * (`follow` tells of new events) until it takes the stream over.
   */
  remote = false
  /** Shared log only: this instance holds the stream's lease. */
  owned = false
  /** Shared log only: a new POST stream's claim is still to answer. */
  claiming = false
  /** Released before its claim answered: the claim's answer does not make it owned again. */
  private releasedWhileClaiming = false
  /** A follower whose owner is gone calls this to feed the stream itself. */
  takeOver: ((status: StreamStatus) => Promise<void>) | undefined = undefined
  /** Interceptors for the messages of upstream bodies feeding this stream. */
  filter: MessageFilter | undefined = undefined
  /** The upstream's last event id on this stream: where to re-open the upstream stream from. */
  resumeFrom: string | undefined = undefined
  /** A take-over of this stream is under way. */
  takingOver = false
  /** Shutdown: stop feeding without completing, so another instance takes the stream over. */
  stopping = false
  /** Stops listening for other instances' appends. */
  unwatch: (() => void) | undefined = undefined
  /** The session ended: nothing more is published or logged (its log is being deleted). */
  closed = false
  private readonly ctx: LiveStreamContext

  constructor (ctx: LiveStreamContext, sessionId: string, id: string, lastSeq = 0) {
    this.ctx = ctx
    this.sessionId = sessionId
    this.id = id
    // Go on from what the log already holds (written before a restart, or by another instance).
    this.seq = lastSeq
    this.appended = lastSeq
  }

  get lastSeq (): number {
    return this.appended
  }

  /** Runs `work` (or waits for it) before anything published after this call. */
  after (work: Promise<void> | (() => void)): void {
    this.inFlight++
    this.chain = this.chain.then(typeof work === 'function' ? work : () => work).finally(() => { this.inFlight-- })
  }

  /** Logs an event, then writes it to the attached client. Order is kept across async appends. */
  publish (data: string, upstreamEventId?: string): void {
    // An ended session's log is gone: an append now would create it again, and nothing frees it.
    if (this.closed) return
    if (upstreamEventId !== undefined) this.resumeFrom = upstreamEventId
    const event = { seq: ++this.seq, data, at: this.ctx.now(), ...(upstreamEventId === undefined ? {} : { upstreamEventId }) }
    this.inFlight++
    // Sent now, awaited in turn: the store gets appends in order without a round trip between
    // them (or, for a new POST stream, after its claim), and delivery still waits for each.
    const sent = this.ctx.store.append(this.sessionId, this.id, event, { owner: this.ctx.owner })
    sent.catch(() => {})
    this.chain = this.chain.then(async () => {
      // Queued before the session ended: its log is deleted after this, so once its append is
      // answered (the deletion must not go first), the event is not sent.
      if (this.closed) {
        await sent.catch(() => {})
        this.inFlight--
        return
      }
      await this.append(event, sent)
      this.inFlight--
      this.appended = event.seq
      const writer = this.writer
      if (writer !== undefined && !writer.catchingUp && !writer.deliver(event, this.ctx.now())) {
        this.catchUpInBackground(writer)
      }
    })
  }

  /**
   * Awaits the append sent at publish, retrying while the store is away (later events wait their
   * turn to be delivered). Past the limit, or refused for good by the store, the event is still
   * delivered to an attached client, but cannot be replayed. Appends are sent before earlier ones
   * are known to have landed, so a shared log takes each only at the next position; a retry comes
   * after every earlier event has landed or been given up, so it may take any.
   */
  private async append (event: StoredEvent, sent: Promise<void>): Promise<void> {
    const started = this.ctx.now()
    for (let attempt = 0; ; attempt++) {
      try {
        await (attempt === 0 ? sent : this.ctx.store.append(this.sessionId, this.id, event, { anyPosition: true, owner: this.ctx.owner }))
        if (attempt > 0) this.ctx.log.info({ stream: this.id, attempts: attempt + 1 }, 'event log append succeeded after retries')
        return
      } catch (err) {
        // The session ended meanwhile: no use holding its deletion up with retries.
        if (this.closed) return
        if ((err as { final?: boolean }).final === true || this.ctx.now() - started >= APPEND_RETRY_MS) {
          this.ctx.log.error({ stream: this.id, seq: event.seq, err }, 'event log append failed; event delivered live only')
          return
        }
        if (attempt === 0) this.ctx.log.warn({ stream: this.id, err }, 'event log append failed; retrying')
        // The first retry at once: an append sent ahead of a failed one only needs sending again.
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)).unref())
      }
    }
  }

  /**
   * The session ended: stop publishing. Resolves once appends already under way are done, so the
   * log can be deleted after them.
   */
  close (): Promise<void> {
    this.closed = true
    this.done = true
    return this.chain
  }

  /** The upstream's event id for a position that carries no event (its priming event). */
  noteUpstreamEventId (upstreamEventId: string): void {
    if (this.closed) return
    this.resumeFrom = upstreamEventId
    this.ctx.store.shared?.noteUpstreamEventId(this.sessionId, this.id, upstreamEventId)
      .catch((err: unknown) => { this.ctx.log.warn({ stream: this.id, err }, 'could not record the upstream resume point') })
  }

  /** Follower: another instance logged events up to `seq` (and, with `done`, finished the stream). */
  follow (seq: number, done: boolean): void {
    if (seq > this.appended) this.appended = seq
    if (done) this.done = true
    const writer = this.writer
    if (writer !== undefined) this.catchUpInBackground(writer)
  }

  /**
   * A catch-up nobody awaits: with the store away (Redis down for a moment) the replay rejects,
   * and an unhandled rejection would take the process down. The client's stream ends instead,
   * and it resumes from where it got to once the store is back.
   */
  private catchUpInBackground (writer: ClientWriter): void {
    this.catchUp(writer).catch((err: unknown) => {
      this.ctx.log.warn({ stream: this.id, err }, 'could not replay the event log to a client; its stream ends so it resumes')
      writer.end('done', this.ctx.retryMs)
    })
  }

  /** Follower becoming owner: events are numbered on from what the log holds. */
  own (lastSeq: number): void {
    this.remote = false
    this.owned = true
    this.unwatch?.()
    this.unwatch = undefined
    // Past whatever the log is known to hold: a status read a moment ago, or later appends heard of.
    this.seq = Math.max(this.seq, this.appended, lastSeq)
    this.appended = Math.max(this.appended, lastSeq)
  }

  /**
   * Hands everything published so far to the client's socket now: a JSON answer about to leave on
   * another response must not overtake what the upstream sent before it (a client drops progress
   * that arrives after its request's answer), and a stream ended at shutdown must first give its
   * client the priming event to resume from. Undefined when nothing is still being logged.
   */
  settle (): Promise<void> | undefined {
    if (this.inFlight === 0) {
      this.writer?.flush()
      return undefined
    }
    return this.chain.then(() => { this.writer?.flush() })
  }

  /**
   * Marks the stream complete once everything published so far is logged and delivered. The log
   * is told now, behind the appends already sent (in one script with them when they share the
   * tick, as a quick answer's do), on the condition that they all landed; when one is still to
   * (it failed and is being retried), nothing changes and the release is sent again after them.
   * The client's stream ends once they are delivered.
   */
  finish (): Promise<void> {
    const early = this.release(true, this.seq)
    this.chain = this.chain.then(async () => {
      this.done = true
      const writer = this.writer
      if (writer !== undefined && !writer.catchingUp && writer.lastSeq >= this.appended) writer.end('done')
      // Not released (an event before the last was still to land, or the store was away): now
      // every event is logged or given up, so it goes unconditionally.
      if (await early !== 'released') await this.release(true)
    })
    return this.chain
  }

  /** A new POST stream's claim answered (`mine`: this instance holds its lease). */
  onClaim (mine: boolean): void {
    this.claiming = false
    if (mine && !this.releasedWhileClaiming) this.owned = true
  }

  /**
   * Gives up this instance's lease (`done`: the stream is complete; with `lastSeq`, only once
   * every event up to it is logged). While its claim is still to answer, the release goes right
   * behind it: the log drops only this instance's own lease, and completes only a stream whose
   * lease is this instance's or lapsed, so a lost claim loses nothing. A closed stream's session
   * is being deleted: nothing is sent that would bring its keys back.
   */
  async release (done: boolean, lastSeq?: number): Promise<'released' | 'not yet' | 'failed' | undefined> {
    if (this.ctx.store.shared === undefined || this.closed) return undefined
    const shared = this.ctx.store.shared
    const whileClaiming = this.claiming
    if (whileClaiming) this.releasedWhileClaiming = true
    else if (!this.owned) return undefined
    this.owned = false
    let result: 'released' | 'not yet' | 'failed'
    try {
      result = await shared.release(this.sessionId, this.id, this.ctx.owner, done, lastSeq) ? 'released' : 'not yet'
    } catch (err) {
      this.ctx.log.warn({ stream: this.id, err }, 'could not release a stream lease')
      result = 'failed'
    }
    // Not released: the lease is still this instance's, renewed until it is.
    if (result !== 'released' && !this.closed) {
      if (whileClaiming) this.releasedWhileClaiming = false
      if (!this.claiming) this.owned = true
    }
    return result
  }

  /** Attaches a client that has seen everything up to `writer.lastSeq`; replays the rest. */
  attach (writer: ClientWriter): Promise<'ok' | 'unknown' | 'trimmed'> {
    const previous = this.writer
    this.writer = writer
    if (previous !== undefined && previous !== writer) previous.end('replaced')
    return this.catchUp(writer)
  }

  detach (writer: ClientWriter): void {
    if (this.writer === writer) this.writer = undefined
  }

  private async catchUp (writer: ClientWriter): Promise<'ok' | 'unknown' | 'trimmed'> {
    if (writer.catchingUp) return 'ok'
    writer.catchingUp = true
    try {
      while (writer.ended === undefined && writer.lastSeq < this.appended) {
        const before = writer.lastSeq
        const result = await this.ctx.store.replay(this.sessionId, this.id, before)
        if (result.kind !== 'events') return result.kind
        this.ctx.counts.replayed += await writer.replay(result.events, this.ctx.now)
        const first = result.events[0]?.seq
        if (first === undefined) break
        if (writer.lastSeq > before) continue
        if (first <= before + 1) break
        // Events the log never held (given up while the store was away: delivered live only)
        // leave a gap no resuming client can fill: it goes on after them, not wait for ever.
        this.ctx.log.warn({ stream: this.id, missing: first - before - 1 }, 'a resuming client skips events the log never held')
        writer.skipTo(first - 1)
      }
    } finally {
      writer.catchingUp = false
    }
    if (this.done && writer.lastSeq >= this.appended) writer.end('done')
    return 'ok'
  }
}
