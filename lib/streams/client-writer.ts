/**
 * One client's SSE response, attached to one logged stream. It writes each event in order, knows
 * the last sequence number it wrote, and gives up (so the client resumes from the log) rather than
 * buffer without bound for a slow reader.
 */
import { encodeComment, encodeEvent, encodeRetry } from '../sse/encode.ts'
import { formatEventId, type StoredEvent } from '../events/store.ts'

/** The part of a Node `ServerResponse` a writer uses. */
export interface Sink {
  write (chunk: string): boolean
  end (): void
  destroy (): void
  readonly writableLength: number
  readonly destroyed: boolean
  once (event: 'close' | 'drain', listener: () => void): unknown
  off (event: 'close' | 'drain', listener: () => void): unknown
}

export type WriterEnd = 'done' | 'client' | 'slow' | 'poll' | 'shutdown' | 'replaced' | 'session'

export class ClientWriter {
  readonly streamId: string
  readonly attachedAt: number
  /** Sequence number of the last event written to this client. */
  lastSeq: number
  lastWriteAt: number
  /** Whether the client holds an id of this stream to resume from. */
  hasResumePoint = false
  /** True while the log is being replayed to this client: live events wait. */
  catchingUp = false
  /** When the client's unread bytes last went over the high-water mark. */
  saturatedSince: number | undefined = undefined
  ended: WriterEnd | undefined = undefined
  private readonly sink: Sink
  /** Text written this tick, not yet handed to the socket. */
  private pending = ''
  private readonly highWaterMark: number
  private readonly onEnd: (writer: ClientWriter, why: WriterEnd) => void

  constructor (sink: Sink, streamId: string, afterSeq: number, options: { highWaterMark: number, now: number, onEnd: (writer: ClientWriter, why: WriterEnd) => void }) {
    this.sink = sink
    this.streamId = streamId
    this.lastSeq = afterSeq
    this.attachedAt = options.now
    this.lastWriteAt = options.now
    this.highWaterMark = options.highWaterMark
    this.onEnd = options.onEnd
    sink.once('close', () => this.finish('client'))
  }

  /** `retry:` and, when the client understands it, a priming event holding the resume point. */
  start (retryMs: number, prime: boolean, now: number): void {
    let text = encodeRetry(retryMs)
    if (prime) {
      text += encodeEvent({ id: formatEventId(this.streamId, this.lastSeq), data: '' })
      this.hasResumePoint = true
    }
    this.write(text, now)
  }

  /** Goes on after `seq` without the events up to it (a gap in the log that nothing will fill). */
  skipTo (seq: number): void {
    if (seq > this.lastSeq) this.lastSeq = seq
  }

  /** Writes the event if it is the next one. Returns false when there is a gap to fill first. */
  deliver (event: StoredEvent, now: number): boolean {
    if (this.ended !== undefined || event.seq <= this.lastSeq) return true
    if (event.seq !== this.lastSeq + 1) return false
    this.lastSeq = event.seq
    this.hasResumePoint = true
    this.write(encodeEvent({ id: formatEventId(this.streamId, event.seq), data: event.data }), now)
    return true
  }

  /** Whether the client has more unread than the high-water mark (replays wait for it). */
  get saturated (): boolean {
    return this.sink.writableLength + this.pending.length > this.highWaterMark
  }

  /** Resolves when the client has read what was written, or is gone. */
  drained (): Promise<void> {
    this.flush()
    if (this.ended !== undefined || !this.saturated) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.sink.off('drain', done)
        this.sink.off('close', done)
        resolve()
      }
      this.sink.once('drain', done)
      this.sink.once('close', done)
    })
  }

  /**
   * Writes logged events paced by the client: past the high-water mark it waits for the socket to
   * drain instead of buffering. Returns how many were written; stops if the client goes.
   */
  async replay (events: readonly StoredEvent[], now: () => number): Promise<number> {
    let written = 0
    for (const event of events) {
      if (this.ended !== undefined) break
      this.deliver(event, now())
      written++
      if (this.saturated) await this.drained()
    }
    return written
  }

  keepAlive (now: number): void {
    if (this.ended === undefined) this.write(encodeComment('keep-alive'), now)
  }

  /** Ends the response normally (after a `retry:` hint when the client should come back). */
  end (why: WriterEnd, retryMs?: number): void {
    if (this.ended !== undefined) return
    if (retryMs !== undefined) this.pending += encodeRetry(retryMs)
    this.flush()
    this.finish(why)
    this.sink.end()
  }

  /** Writes what this tick produced as one chunk. @internal */
  flush (): void {
    if (this.pending.length === 0) return
    const text = this.pending
    this.pending = ''
    if (this.sink.destroyed) {
      this.finish('client')
      return
    }
    this.sink.write(text)
    if (this.saturatedSince === undefined && this.saturated) {
      this.saturatedSince = this.lastWriteAt
      void this.drained().then(() => { this.saturatedSince = undefined })
    }
  }

  private write (text: string, now: number): void {
    if (this.ended !== undefined) return
    // Events of one upstream chunk (and the end) leave as one chunk in one write: one chunked-
    // encoding frame and one syscall, not one of each per event.
    if (this.pending.length === 0) setImmediate(flushWriter, this)
    this.pending += text
    this.lastWriteAt = now
  }

  /**
   * Drops a client that has left more than the high-water mark unread for `stallMs`: the
   * connection goes, not the events; the client resumes from the log. Until then the upstream
   * waits for it (see `pumpEvents`), so gateway memory per stream stays near the high-water mark.
   */
  dropIfStalled (now: number, stallMs: number): boolean {
    if (this.ended !== undefined || this.saturatedSince === undefined || now - this.saturatedSince < stallMs) return false
    this.finish('slow')
    this.sink.destroy()
    return true
  }

  private finish (why: WriterEnd): void {
    if (this.ended !== undefined) return
    this.ended = why
    this.onEnd(this, why)
  }
}

function flushWriter (writer: ClientWriter): void {
  writer.flush()
}
