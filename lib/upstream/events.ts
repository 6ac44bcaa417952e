/**
 * What an upstream sends back for one exchange, as messages: the message-level half of the
 * `Upstream` interface. An answer is nothing (accepted), one whole set of messages (a JSON body, or
 * a channel's lone response), or a flow of events as they come (an SSE body, a channel's progress
 * then response). Only the Streamable HTTP side knows SSE framing; channels push messages here
 * directly, already parsed.
 */
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.ts'
import { parseEventData } from '../relay/messages.ts'

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
 * The bytes a message arrived as (a member's JSON body, a stdio line), where a channel knows them:
 * a lone response then goes to the client as it came, not encoded again. A hidden property (not
 * enumerable: a copy made to change the message, `{ ...message }`, cannot carry stale bytes
 * along; a symbol: JSON never shows it). Cheaper than a WeakMap, whose entries weigh on every
 * young-generation collection.
 */
const RAW = Symbol('raw')

export function withRaw<T extends JsonRpcMessage> (message: T, raw: Buffer): T {
  Object.defineProperty(message, RAW, { value: raw, configurable: true })
  return message
}

export function rawOf (message: JsonRpcMessage): Buffer | undefined {
  return (message as { [RAW]?: Buffer })[RAW]
}

const QUOTE = 34
const COLON = 58
const BACKSLASH = 92
const ESCAPE_U = Buffer.from('\\u')

function isSpace (byte: number | undefined): boolean {
  return byte === 32 || byte === 9 || byte === 10 || byte === 13
}

/**
 * The bytes of a lone response with its string id `from` (one the gateway gave it) replaced by
 * `to`, or undefined when that cannot be done for sure: the id's token is found exactly once, and
 * it is the value of an `"id"` key. (Inside a JSON string a quote is escaped, so string contents
 * cannot pass for the key.)
 */
export function withIdReplaced (raw: Buffer, from: string, to: JsonRpcId): Buffer | undefined {
  // An escaped character anywhere, and the top-level id may be written in escapes (never found as
  // the token) while a nested value spells it plainly: give up rather than patch that one.
  if (raw.includes(ESCAPE_U)) return undefined
  const token = JSON.stringify(from)
  const at = raw.indexOf(token)
  if (at === -1 || raw.indexOf(token, at + token.length) !== -1) return undefined
  let i = at - 1
  while (isSpace(raw[i])) i--
  if (raw[i] !== COLON) return undefined
  i--
  while (isSpace(raw[i])) i--
  if (raw[i] !== QUOTE || raw[i - 1] !== 100 || raw[i - 2] !== 105 || raw[i - 3] !== QUOTE || raw[i - 4] === BACKSLASH) return undefined
  const replacement = JSON.stringify(to)
  const out = Buffer.allocUnsafe(raw.length - token.length + Buffer.byteLength(replacement))
  raw.copy(out, 0, 0, at)
  let end = at + out.write(replacement, at)
  end += raw.copy(out, end, at + token.length)
  return end === out.length ? out : undefined
}

/** A whole answer of one message (a lone response, or one made by the upstream adapter). */
export function singleAnswer (message: JsonRpcMessage, sessionId?: string): UpstreamAnswer {
  return { kind: 'single', sessionId, messages: [message], batch: false, raw: rawOf(message) }
}

/** One message as an event, already parsed (what channels and bridges push). */
export function messageEvent (message: JsonRpcMessage): UpstreamEvent {
  const raw = rawOf(message)
  // Bytes with a line break in them (pretty-printed JSON) would end the SSE event early.
  const data = raw === undefined || raw.includes(10) || raw.includes(13) ? JSON.stringify(message) : raw.toString('utf8')
  return { data, parsed: { messages: [message], batch: false } }
}

/** Lets go of an answer nobody will read (a notification's, or an exchange that failed first). */
export function releaseAnswer (answer: UpstreamAnswer): void {
  if (answer.kind === 'stream') answer.events.destroy()
}

/**
 * A flow of upstream events with flow control, lighter than a Node stream: the producer pushes,
 * the one reader gets each event in order, then `end` once, never from inside its own callback.
 * Events pushed while the reader is paused (or not attached yet) wait in order and the producer is
 * asked to pause: a Streamable HTTP body stops being read, so what waits is what one chunk held.
 * Channels and bridges cannot pause (one channel carries every answer of its session): for them
 * the queue is unbounded here, and the gateway's event log is what bounds a slow client.
 */
export class UpstreamEvents implements Pausable {
  private readonly producer: EventProducer
  private queue: UpstreamEvent[] = []
  private onEvent: ((event: UpstreamEvent) => void) | undefined
  private onEnd: ((error: Error | undefined) => void) | undefined
  private paused = false
  private ending: { error: Error | undefined } | undefined
  /** Set once the flow is over: how it ended, for a reader or watcher that comes later. */
  private result: { error: Error | undefined } | undefined
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
    const result = this.result
    // Over before anyone read it (destroyed by a deadline meanwhile, say): say so, as late as ever.
    if (result !== undefined) process.nextTick(() => { onEnd(result.error) })
    else this.drain()
  }

  /** Producer: one more event. */
  push (event: UpstreamEvent): void {
    if (this.ending !== undefined || this.destroyed) return
    if (this.onEvent !== undefined && !this.paused && this.queue.length === 0 && !this.draining) {
      // The common case: straight to the reader. Marked as draining, so that a push from inside
      // the reader's callback waits its turn instead of overtaking the event being read.
      this.draining = true
      try {
        this.onEvent(event)
      } finally {
        this.draining = false
      }
      if (this.queue.length > 0 || this.ending !== undefined) this.drain()
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
    if (this.result !== undefined) callback()
    else this.finished = callback
  }

  /**
   * Reader: stop. The producer is told; a reader that had not seen the end hears it on the next
   * tick, as a break (`error`, else "closed": the flow did not end by itself), as a Node stream's
   * 'close' comes: whoever stopped the flow finishes what it was doing first (shutdown ends the
   * client's stream before a reader could answer on it).
   */
  destroy (error?: Error): void {
    if (this.destroyed) return
    this.destroyed = true
    this.queue = []
    this.producer.stop()
    if (this.result !== undefined) return
    const result = { error: error ?? this.ending?.error ?? new Error('upstream stream closed') }
    this.result = result
    this.finished?.()
    const onEnd = this.onEnd
    if (onEnd !== undefined) process.nextTick(() => { onEnd(result.error) })
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
    if (this.result !== undefined) return
    this.result = { error }
    this.finished?.()
    this.onEnd?.(error)
  }
}

/** The JSON-RPC messages of one event (none for a non-message event or bytes that are not JSON-RPC). */
export function eventMessages (event: UpstreamEvent): JsonRpcMessage[] {
  if (event.event !== undefined && event.event !== 'message') return []
  return (event.parsed ?? parseEventData(event.data))?.messages ?? []
}

/**
 * Reads a whole answer, message by message, for a gateway component that is itself the client of
 * an upstream (the era bridge's sessions): resolves when the answer is over, rejects when its
 * flow broke.
 */
export async function readMessages (answer: UpstreamAnswer, onMessage: (message: JsonRpcMessage) => void): Promise<void> {
  if (answer.kind === 'accepted') return
  if (answer.kind === 'single') {
    for (const message of answer.messages) onMessage(message)
    return
  }
  await new Promise<void>((resolve, reject) => {
    answer.events.read((event) => {
      for (const message of eventMessages(event)) onMessage(message)
    }, (error) => { if (error === undefined) resolve(); else reject(error) })
  })
}
