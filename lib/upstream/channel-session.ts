/**
 * What a channel upstream keeps per upstream session: the answers waiting for their messages, the
 * outlet for messages that answer nothing, and (shared mode) the channel's id rewriting.
 */
import { toJsonRpcError } from '../errors.ts'
import { errorResponse, isResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { DropReason } from '../relay/pending.ts'
import type { MessageChannel } from './channel.ts'
import { messageEvent, singleAnswer, UpstreamEvents, type UpstreamAnswer } from './events.ts'

export function progressToken (message: JsonRpcRequest): string | number | undefined {
  const meta = message.params?._meta as { progressToken?: unknown } | undefined
  const token = meta?.progressToken
  return typeof token === 'string' || typeof token === 'number' ? token : undefined
}

/** One exchange's answer: whole if its first message completes it, else a flow of events. */
export class Answer {
  readonly remaining: Set<JsonRpcId>
  readonly tokens: Array<string | number> = []
  private readonly sessionId: string | undefined
  private resolve: ((answer: UpstreamAnswer) => void) | undefined
  private events: UpstreamEvents | undefined
  private readonly onAbandon: (answer: Answer) => void
  finished = false

  constructor (ids: JsonRpcId[], sessionId: string | undefined, resolve: (answer: UpstreamAnswer) => void, onAbandon: (answer: Answer) => void) {
    this.remaining = new Set(ids)
    this.sessionId = sessionId
    this.resolve = resolve
    this.onAbandon = onAbandon
  }

  deliver (message: JsonRpcMessage): void {
    if (this.finished) return
    if (isResponse(message) && message.id !== null) this.remaining.delete(message.id)
    const resolve = this.resolve
    if (resolve !== undefined) {
      this.resolve = undefined
      if (this.remaining.size === 0) {
        this.finished = true
        resolve(singleAnswer(message, this.sessionId))
        return
      }
      // No flow control toward the channel: it carries every answer of the session (or of all
      // sessions, shared), so one slow reader must not stall the others. The gateway's own
      // stream log bounds what a slow client holds.
      this.events = new UpstreamEvents({
        stop: () => {
          if (this.finished) return
          this.finished = true
          this.onAbandon(this)
        }
      })
      resolve({ kind: 'stream', sessionId: this.sessionId, events: this.events })
    }
    const events = this.events as UpstreamEvents
    events.push(messageEvent(message))
    if (this.remaining.size === 0) {
      this.finished = true
      events.end()
    }
  }

  /** The channel is gone: every request still waiting gets `reason` as its error. */
  fail (reason: Error): void {
    if (this.finished) return
    const { code, message } = toJsonRpcError(reason).body.error
    for (const id of [...this.remaining]) this.deliver(errorResponse(id, code, message))
  }

  /** The request was aborted before any answer: nothing more will be delivered. */
  abort (): void {
    if (this.finished) return
    this.finished = true
    this.resolve = undefined
    this.onAbandon(this)
  }
}

/** What arrives for a session outside any answer: its open stream, or a queue until one opens. */
export class Outlet {
  private events: UpstreamEvents | undefined
  private queue: JsonRpcMessage[] = []
  private readonly maxQueued: number
  dropped = 0

  constructor (maxQueued: number) {
    this.maxQueued = maxQueued
  }

  get open (): boolean {
    return this.events !== undefined
  }

  push (message: JsonRpcMessage): void {
    if (this.events !== undefined) {
      this.events.push(messageEvent(message))
      return
    }
    if (this.queue.length >= this.maxQueued) {
      this.queue.shift()
      this.dropped++
    }
    this.queue.push(message)
  }

  /** The session's stream: what waited first, then what comes, until the reader stops or it ends. */
  attach (): UpstreamEvents {
    const events: UpstreamEvents = new UpstreamEvents({
      stop: () => { if (this.events === events) this.events = undefined }
    })
    for (const message of this.queue) events.push(messageEvent(message))
    this.queue = []
    this.events = events
    return events
  }

  end (): void {
    this.events?.end()
    this.events = undefined
    this.queue = []
  }
}

/** One upstream session: its channel (own or shared), its POST answers and its outlet. */
export class ChannelSession {
  readonly id: string
  readonly channel: MessageChannel
  /** Request id as the client sent it, to the answer waiting for it. */
  readonly answers = new Map<JsonRpcId, Answer>()
  readonly progress = new Map<string | number, Answer>()
  /** Answers still open, oldest first. */
  readonly live = new Set<Answer>()
  readonly outlet: Outlet
  gone: Error | undefined
  lastUsed = Date.now()

  constructor (id: string, channel: MessageChannel, maxQueued: number) {
    this.id = id
    this.channel = channel
    this.outlet = new Outlet(maxQueued)
  }

  forget (answer: Answer): void {
    this.live.delete(answer)
    for (const id of answer.remaining) if (this.answers.get(id) === answer) this.answers.delete(id)
    for (const token of answer.tokens) if (this.progress.get(token) === answer) this.progress.delete(token)
  }

  /** A message from the upstream for this session, with the client's own ids. */
  route (message: JsonRpcMessage, log: Logger, upstream: string, onDrop: ((reason: DropReason) => void) | undefined): void {
    if (isResponse(message)) {
      const answer = message.id === null ? undefined : this.answers.get(message.id)
      if (answer === undefined) {
        log.debug({ upstream, upstreamSessionId: this.id, id: message.id }, 'dropped an upstream response to no pending request')
        onDrop?.('stray')
        return
      }
      this.answers.delete(message.id as JsonRpcId)
      answer.deliver(message)
      if (answer.finished) this.forget(answer)
      return
    }
    if (message.method === 'notifications/progress') {
      const token = message.params?.progressToken
      const answer = typeof token === 'string' || typeof token === 'number' ? this.progress.get(token) : undefined
      if (answer !== undefined) {
        answer.deliver(message)
        return
      }
    }
    let newest: Answer | undefined
    for (const answer of this.live) newest = answer
    if (newest !== undefined) newest.deliver(message)
    else this.outlet.push(message)
  }

  end (reason: Error): void {
    if (this.gone !== undefined) return
    this.gone = reason
    for (const answer of [...this.live]) answer.fail(reason)
    this.live.clear()
    this.answers.clear()
    this.progress.clear()
    this.outlet.end()
  }
}

/** Shared mode: the one channel, its initialize result, and the id and token rewriting. */
export interface SharedChannel {
  channel: MessageChannel
  sessions: Set<ChannelSession>
  initialize: Promise<Record<string, unknown>> | undefined
  /** The channel's request ids, to the client's; `token` is the progress token minted with it. */
  requests: Map<string, { session: ChannelSession, id: JsonRpcId, token: string | undefined }>
  tokens: Map<string, { session: ChannelSession, token: string | number }>
  next: number
}

/** Frees a shared-channel request id and the progress token minted with it. */
export function forgetShared (shared: SharedChannel, own: string): void {
  const entry = shared.requests.get(own)
  if (entry === undefined) return
  shared.requests.delete(own)
  if (entry.token !== undefined) shared.tokens.delete(entry.token)
}
