/**
 * Where the chain meets traffic: a client's POST body (some messages may be answered here and
 * never sent), an upstream's JSON answer, and an upstream's SSE stream (each event's messages, run
 * by the stream readers as they parse them, in order, the stream held back while a handler works).
 */
import type { Pausable } from '../upstream/events.ts'
import { isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import { contextFor, type InterceptorChain, type InterceptorContext, type Outcome } from './chain.ts'

export type BaseContext = Omit<InterceptorContext, 'kind' | 'direction' | 'request'>

export interface ClientOutcome {
  /** What goes on to the upstream. */
  forward: JsonRpcMessage[]
  /** Answers made here (blocked or mocked requests), for the client. */
  answers: JsonRpcMessage[]
  changed: boolean
}

/**
 * Runs the chain on each message in turn, handing each outcome to `take`: synchronous while every
 * handler is, asynchronous from the first that is not.
 */
function runEach<R> (chain: InterceptorChain, messages: readonly JsonRpcMessage[], contextOf: (message: JsonRpcMessage) => Omit<InterceptorContext, 'kind'>, take: (outcome: Outcome, message: JsonRpcMessage) => void, result: () => R): R | Promise<R> {
  const step = (i: number): R | Promise<R> => {
    for (; i < messages.length; i++) {
      const message = messages[i] as JsonRpcMessage
      const outcome = chain.run(message, contextOf(message))
      if (outcome instanceof Promise) {
        const at = i
        return outcome.then((o) => {
          take(o, message)
          return step(at + 1)
        })
      }
      take(outcome, message)
    }
    return result()
  }
  return step(0)
}

/** Runs the chain on a client's messages. */
export function interceptClient (chain: InterceptorChain, messages: readonly JsonRpcMessage[], base: BaseContext): ClientOutcome | Promise<ClientOutcome> {
  const out: ClientOutcome = { forward: [], answers: [], changed: false }
  const context = contextFor(base, 'client_to_upstream', 'request', undefined)
  return runEach(chain, messages, () => context, (outcome, message) => {
    if (outcome.kind === 'forward') {
      out.forward.push(outcome.message)
      if (outcome.message !== message) out.changed = true
    } else {
      out.changed = true
      if (outcome.kind === 'answer') out.answers.push(outcome.answer)
    }
  }, () => out)
}

/** Requests by id, so a response's interceptors know what it answers. */
export function requestsById (messages: readonly JsonRpcMessage[]): Map<JsonRpcId, JsonRpcRequest> {
  const map = new Map<JsonRpcId, JsonRpcRequest>()
  for (const message of messages) if (isRequest(message)) map.set(message.id, message)
  return map
}

export interface FilterResult {
  messages: JsonRpcMessage[]
  changed: boolean
}

/** The chain as the stream readers use it: synchronous while every handler is. */
export type MessageFilter = (messages: JsonRpcMessage[]) => FilterResult | Promise<FilterResult>

export function upstreamFilter (chain: InterceptorChain, base: BaseContext, requests: Map<JsonRpcId, JsonRpcRequest> | undefined): MessageFilter {
  const contextOf = (message: JsonRpcMessage): Omit<InterceptorContext, 'kind'> => {
    const id = 'id' in message && !('method' in message) ? message.id : undefined
    return contextFor(base, 'upstream_to_client', 'response', id === undefined || id === null ? undefined : requests?.get(id))
  }
  return (messages) => {
    const out: FilterResult = { messages: [], changed: false }
    return runEach(chain, messages, contextOf, (outcome, message) => {
      // An upstream request answered here (a mock of the client) is not supported: see README.
      if (outcome.kind !== 'forward') {
        out.changed = true
        return
      }
      out.messages.push(outcome.message)
      if (outcome.message !== message) out.changed = true
    }, () => out)
  }
}

/**
 * Runs a filter over a stream's events in order, holding the upstream while a handler works
 * asynchronously; `emit` gets each event's result in the order the events came.
 */
export class FilterGate {
  private queue: Promise<void> | undefined
  private readonly source: Pausable
  private readonly filter: MessageFilter

  constructor (source: Pausable, filter: MessageFilter) {
    this.source = source
    this.filter = filter
  }

  push (messages: JsonRpcMessage[], emit: (result: FilterResult) => void): void {
    if (this.queue === undefined) {
      const result = this.filter(messages)
      if (!(result instanceof Promise)) {
        emit(result)
        return
      }
      this.hold(result.then(emit))
      return
    }
    // Behind a handler still at work: run later, so handlers see messages in order too.
    this.hold(this.queue.then(() => this.filter(messages)).then(emit))
  }

  private hold (work: Promise<void>): void {
    const queue = work.catch(() => {}).finally(() => {
      if (this.queue === queue) {
        this.queue = undefined
        if (this.source.isPaused() && !this.source.destroyed) this.source.resume()
      }
    })
    this.queue = queue
    this.source.pause()
  }

  /** Resolves once every event pushed so far is emitted. */
  idle (): Promise<void> {
    return this.queue ?? Promise.resolve()
  }
}
