/**
 * A logged stream: events are numbered, appended to the event store, and only then written to the
 * attached client, if any. A client attaching after a position first gets the log from there,
 * then the live events, each exactly once and in order.
 */
import type { EventStore } from '../events/store.ts'
import type { JsonRpcId } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { ClientWriter } from './client-writer.ts'

export interface LiveStreamContext {
  store: EventStore
  now: () => number
  log: Logger
  /** Shared counters (metrics). */
  counts: { replayed: number }
}

export class LiveStream {
  readonly sessionId: string
  readonly id: string
  /** Last sequence number handed out. */
  private seq = 0
  /** Last sequence number whose append has completed (events up to it can be replayed). */
  private appended = 0
  private chain: Promise<void> = Promise.resolve()
  writer: ClientWriter | undefined = undefined
  /** No more events will come (a POST stream whose answer was logged, or a closed session). */
  done = false
  /** Requests this stream still has to answer (POST streams). */
  pending: Set<JsonRpcId> | undefined = undefined
  /** Stops reading the upstream (client cancelled every request, session ended, shutdown). */
  stopUpstream: (() => void) | undefined = undefined
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

  /** Logs an event, then writes it to the attached client. Order is kept across async appends. */
  publish (data: string, upstreamEventId?: string): void {
    const event = { seq: ++this.seq, data, at: this.ctx.now(), ...(upstreamEventId === undefined ? {} : { upstreamEventId }) }
    this.chain = this.chain.then(async () => {
      try {
        await this.ctx.store.append(this.sessionId, this.id, event)
      } catch (err) {
        this.ctx.log.error({ sessionId: this.sessionId, stream: this.id, err }, 'event log append failed')
        return
      }
      this.appended = event.seq
      const writer = this.writer
      if (writer !== undefined && !writer.catchingUp && !writer.deliver(event, this.ctx.now())) {
        void this.catchUp(writer)
      }
    })
  }

  /** Marks the stream complete once everything published so far is logged and delivered. */
  finish (): Promise<void> {
    this.chain = this.chain.then(() => {
      this.done = true
      const writer = this.writer
      if (writer !== undefined && !writer.catchingUp && writer.lastSeq >= this.appended) writer.end('done')
    })
    return this.chain
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
        const result = await this.ctx.store.replay(this.sessionId, this.id, writer.lastSeq)
        if (result.kind !== 'events') return result.kind
        this.ctx.counts.replayed += await writer.replay(result.events, this.ctx.now)
        if (result.events.length === 0) break
      }
    } finally {
      writer.catchingUp = false
    }
    if (this.done && writer.lastSeq >= this.appended) writer.end('done')
    return 'ok'
  }
}
