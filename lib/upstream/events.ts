/**
 * What an upstream sends back for one exchange, as messages: the message-level half of the
 * `Upstream` interface. An answer is nothing (accepted), one whole set of messages (a JSON body, or
 * a channel's lone response), or a flow of events as they come (an SSE body, a channel's progress
 * then response). Only the Streamable HTTP side knows SSE framing; channels push messages here
 * directly, already parsed.
 */
import type { JsonRpcMessage } from '../jsonrpc.ts'

/** One unit of an upstream's answer: one message or a batch, and its resume point if any. */
export interface UpstreamEvent {
  /** The messages as JSON text: what a logged stream stores and what a client is sent unchanged. */
  data: string
  /** The messages, when the upstream already parsed them (channels); absent, readers parse `data`. */
  parsed?: { messages: JsonRpcMessage[], batch: boolean }
  /** The upstream's event id (Streamable HTTP SSE): where to resume the upstream stream from. */
  id?: string
  /** An SSE event type other than `message`: relayed as it is, never read as JSON-RPC. */
  event?: string
}

export type UpstreamAnswer =
  /** Nothing to say: the messages were notifications or responses (HTTP 202). */
  | { kind: 'accepted', sessionId: string | undefined }
  /** The whole answer at once. `raw` is its bytes as received, sent on when nothing changes them. */
  | { kind: 'single', sessionId: string | undefined, messages: JsonRpcMessage[], batch: boolean, raw: Buffer | undefined }
  /** Events as they come, until the flow ends. */
  | { kind: 'stream', sessionId: string | undefined, events: UpstreamEvents }

/** What a reader of events can hold back (the interceptor gate pauses while a handler works). */
export interface Pausable {
  pause (): void
  resume (): void
  isPaused (): boolean
  readonly destroyed: boolean
}

/** The producer's side of a flow: how to hold its source back, and how to stop it. */
export interface EventProducer {
  pause? (): void
  resume? (): void
  /** The reader stopped reading (client gone, answer complete): free what feeds the flow. */
  stop (): void
}

/**
 * A flow of upstream events with flow control, lighter than a Node stream: the producer pushes,
 * the one reader gets each event in order, then `end` once. Events pushed while the reader is
 * paused (or not attached yet) wait in order; the producer is paused meanwhile, so what waits is
 * at most what one producer step pushed (channels have no flow control of their own: see
 * `ChannelUpstream`).
 */
export class UpstreamEvents implements Pausable {
  private readonly producer: EventProducer
  private queue: UpstreamEvent[] = []
  private onEvent: ((event: UpstreamEvent) => void) | undefined
  private onEnd: ((error: Error | undefined) => void) | undefined
  private paused = false
  private ending: { error: Error | undefined } | undefined
  private ended = false
  private draining = false
  private finished: (() => void) | undefined
  destroyed = false

  constructor (producer: EventProducer) {
    this.producer = producer
  }

  /** The reader: each event, then `onEnd` once (an error: the flow broke rather than ended). */
  read (onEvent: (event: UpstreamEvent) => void, onEnd: (error: Error | undefined) => void): void {
    this.onEvent = onEvent
    this.onEnd = onEnd
    this.drain()
  }

  /** Producer: one more event. */
  push (event: UpstreamEvent): void {
    if (this.ending !== undefined || this.destroyed) return
    if (this.onEvent !== undefined && !this.paused && this.queue.length === 0 && !this.draining) {
      this.onEvent(event)
      return
    }
    this.queue.push(event)
    if (this.queue.length === 1) this.producer.pause?.()
  }

  /** Producer: no more events; `error` when the source broke. */
  end (error?: Error): void {
    if (this.ending !== undefined || this.destroyed) return
    this.ending = { error }
    this.drain()
  }

  pause (): void {
    this.paused = true
  }

  resume (): void {
    if (!this.paused) return
    this.paused = false
    this.drain()
  }

  isPaused (): boolean {
    return this.paused
  }

  /** Called once the flow is over, whichever way (a deadline stops watching it then). */
  onFinish (callback: () => void): void {
    this.finished = callback
  }

  /**
   * Reader: stop. The producer is told; a reader that had not seen the end hears it now, as a
   * break (`error`, else "closed": the flow did not end by itself).
   */
  destroy (error?: Error): void {
    if (this.destroyed) return
    this.destroyed = true
    this.queue = []
    this.producer.stop()
    // On the next tick, as a Node stream's 'close' comes: whoever stopped the flow finishes what
    // it was doing first (shutdown ends the client's stream before a reader could answer on it).
    const reason = error ?? this.ending?.error ?? new Error('upstream stream closed')
    process.nextTick(() => { this.finish(reason) })
  }

  private drain (): void {
    if (this.onEvent === undefined || this.draining) return
    this.draining = true
    try {
      while (this.queue.length > 0 && !this.paused && !this.destroyed) {
        this.onEvent(this.queue.shift() as UpstreamEvent)
      }
    } finally {
      this.draining = false
    }
    if (this.destroyed || this.paused) return
    if (this.queue.length === 0 && this.ending === undefined) this.producer.resume?.()
    if (this.queue.length === 0 && this.ending !== undefined) this.finish(this.ending.error)
  }

  private finish (error: Error | undefined): void {
    if (this.ended) return
    this.ended = true
    this.finished?.()
    this.onEnd?.(error)
  }
}
