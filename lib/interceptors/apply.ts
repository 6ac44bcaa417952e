/**
 * Where the chain meets traffic: a client's POST body (some messages may be answered here and
 * never sent), an upstream's JSON answer, and an upstream's SSE stream (each event's message, in
 * order, with the stream held back while a handler works).
 */
import { Transform, pipeline, type Readable } from 'node:stream'
import { isRequest, messageKind, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import { encodeEvent } from '../sse/encode.ts'
import { SseParser } from '../sse/parser.ts'
import type { SseEvent } from '../sse/encode.ts'
import type { InterceptorChain, InterceptorContext } from './chain.ts'

export type BaseContext = Omit<InterceptorContext, 'kind' | 'direction' | 'request'>

export interface ClientOutcome {
  /** What goes on to the upstream. */
  forward: JsonRpcMessage[]
  /** Answers made here (blocked or mocked requests), for the client. */
  answers: JsonRpcMessage[]
  changed: boolean
}

export async function interceptClient (chain: InterceptorChain, messages: readonly JsonRpcMessage[], base: BaseContext): Promise<ClientOutcome> {
  const out: ClientOutcome = { forward: [], answers: [], changed: false }
  for (const message of messages) {
    const outcome = await chain.run(message, { ...base, direction: 'client_to_upstream', request: undefined })
    if (outcome.kind === 'forward') {
      out.forward.push(outcome.message)
      if (outcome.message !== message) out.changed = true
    } else {
      out.changed = true
      if (outcome.kind === 'answer') out.answers.push(outcome.answer)
    }
  }
  return out
}

/** Requests by id, so a response's interceptors know what it answers. */
export function requestsById (messages: readonly JsonRpcMessage[]): Map<JsonRpcId, JsonRpcRequest> {
  const map = new Map<JsonRpcId, JsonRpcRequest>()
  for (const message of messages) if (isRequest(message)) map.set(message.id, message)
  return map
}

/** Runs the chain on messages from the upstream; dropped ones are left out. */
export async function interceptUpstream (chain: InterceptorChain, messages: readonly JsonRpcMessage[], base: BaseContext, requests: Map<JsonRpcId, JsonRpcRequest> | undefined): Promise<{ messages: JsonRpcMessage[], changed: boolean }> {
  const out: JsonRpcMessage[] = []
  let changed = false
  for (const message of messages) {
    const id = 'id' in message && !('method' in message) ? message.id : undefined
    const outcome = await chain.run(message, { ...base, direction: 'upstream_to_client', request: id === undefined || id === null ? undefined : requests?.get(id) })
    if (outcome.kind === 'forward') {
      out.push(outcome.message)
      if (outcome.message !== message) changed = true
    } else {
      // An upstream request answered here (a mock of the client) is not supported: see README.
      changed = true
    }
  }
  return { messages: out, changed }
}

/**
 * An upstream SSE body with the chain applied to each event's message: same events, same ids,
 * changed or left out as the chain decides. Events that are not JSON-RPC pass untouched (the
 * reader downstream drops them). Destroying the result destroys the upstream body.
 */
export function interceptSse (source: Readable, chain: InterceptorChain | undefined, base: BaseContext, requests: Map<JsonRpcId, JsonRpcRequest> | undefined, prelude = ''): Readable {
  let events: SseEvent[] = []
  let started = false
  const parser = new SseParser({ onEvent: (event) => { events.push(event) } })
  const handle = async (transform: Transform): Promise<void> => {
    if (!started) {
      started = true
      if (prelude !== '') transform.push(prelude)
    }
    const batch = events
    events = []
    for (const event of batch) {
      let value: unknown
      try {
        value = chain !== undefined && event.data.length > 0 && event.event === undefined ? JSON.parse(event.data) : undefined
      } catch {}
      const messages = value === undefined ? undefined : Array.isArray(value) ? value : [value]
      if (chain === undefined || messages === undefined || !messages.every((m) => messageKind(m) !== undefined)) {
        transform.push(encodeEvent(event))
        continue
      }
      const result = await interceptUpstream(chain, messages as JsonRpcMessage[], base, requests)
      if (!result.changed) {
        transform.push(encodeEvent(event))
      } else if (result.messages.length > 0) {
        const data = JSON.stringify(Array.isArray(value) ? result.messages : result.messages[0])
        transform.push(encodeEvent({ ...event, data }))
      } else if (event.id !== undefined) {
        // Keep the position (an id with no data), so resuming from it still works.
        transform.push(encodeEvent({ id: event.id, data: '' }))
      }
    }
  }
  const transform = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      try {
        parser.push(chunk)
      } catch (err) {
        callback(err as Error)
        return
      }
      handle(this).then(() => callback(), callback)
    },
    flush (callback) {
      parser.end()
      handle(this).then(() => callback(), callback)
    }
  })
  return pipeline(source, transform, () => {})
}
