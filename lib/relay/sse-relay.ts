/**
 * The unlogged SSE sink: an upstream's events written to a client as SSE, event by event, as each
 * comes. Each event's messages are checked to be JSON-RPC; the caller sees every message;
 * backpressure from the client pauses the upstream.
 *
 * When the upstream flow breaks, or ends without answering and without giving the client a
 * resumption point (an upstream event id), the client gets a JSON-RPC error for each request still
 * unanswered on this stream instead of waiting forever.
 */
import type { PendingRequests } from './pending.ts'
import { Readable } from 'node:stream'
import { errorResponse, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts'
import { FilterGate, type MessageFilter } from '../interceptors/apply.ts'
import { takeEventData } from './messages.ts'
import { encodeEvent } from '../sse/encode.ts'
import type { Logger } from '../logger.ts'
import type { UpstreamEvents } from '../upstream/events.ts'

export interface SseRelayOptions {
  /** The upstream's answer, as events. */
  source: UpstreamEvents
  /** Ids of the requests this stream must answer; emptied as responses pass. */
  pending?: PendingRequests
  /** Sees each valid message before it is written. */
  onMessage?: (message: JsonRpcMessage) => void
  /**
   * Called when the client side starts reading: the moment to flush response headers, so a client
   * sees the stream open before its first event.
   */
  onStart?: () => void
  /** Called once when the relay is over, whichever way it ended. */
  onDone?: (error: Error | undefined) => void
  /** Builds the error for requests left unanswered. */
  unanswered: (id: JsonRpcId, cause: Error | undefined) => { code: number, message: string }
  log: Logger
  /** Interceptors: each event's messages go through this first (in order). */
  filter?: MessageFilter
  /** Events written before the upstream's (answers the gateway made for part of a batch). */
  prelude?: JsonRpcMessage[]
}

export function relaySse (options: SseRelayOptions): Readable {
  const { source, pending, onMessage, log } = options
  let done = false
  let sawEventId = false
  let started = false

  const out = new Readable({
    read () {
      if (!started) {
        started = true
        options.onStart?.()
      }
      source.resume()
    },
    destroy (err, callback) {
      if (!done) {
        // The client went away first: stop reading the upstream.
        finish(undefined, false)
        source.destroy()
      }
      callback(err)
    }
  })

  const write = (text: string): void => {
    if (!out.push(text)) source.pause()
  }
  for (const message of options.prelude ?? []) out.push(encodeEvent({ data: JSON.stringify(message) }))

  const gate = options.filter === undefined ? undefined : new FilterGate(source, options.filter)

  function finish (error: Error | undefined, push: boolean): void {
    if (done) return
    done = true
    if (push) {
      if (pending !== undefined && pending.size > 0 && (error !== undefined || !sawEventId)) {
        for (const id of pending) {
          const { code, message } = options.unanswered(id, error)
          out.push(encodeEvent({ data: JSON.stringify(errorResponse(id, code, message)) }))
        }
        pending.clear()
      }
      out.push(null)
    }
    options.onDone?.(error)
  }

  source.read((event) => {
    if (done) return
    if (event.id !== undefined) sawEventId = true
    if (event.data.length === 0 || event.event !== undefined) {
      write(encodeEvent(event))
      return
    }
    const taken = takeEventData(event, pending, onMessage, gate, (data) => {
      if (done) return
      if (data !== undefined) write(encodeEvent({ data, id: event.id }))
      // Nothing left to send: the id alone keeps the client's resume point.
      else if (event.id !== undefined) write(encodeEvent({ id: event.id, data: '' }))
    })
    if (!taken) log.warn({ eventId: event.id }, 'dropped upstream SSE event: not JSON-RPC, or a response to no request pending on this stream')
  }, (error) => {
    if (error === undefined && gate !== undefined) void gate.idle().then(() => finish(undefined, true))
    else finish(error, true)
  })
  return out
}
