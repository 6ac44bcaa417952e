/**
 * The unlogged sinks: an upstream's events relayed to a client as they come, as SSE (a Streamable
 * HTTP answer with no event log) or as WebSocket frames. One reader serves both: each event's
 * messages are checked to be JSON-RPC, strays and duplicates dropped, interceptors run, the caller
 * sees every message, and a sink that falls behind pauses the upstream.
 *
 * When the upstream flow breaks, or ends without answering and without giving the client a
 * resumption point (an upstream event id, SSE only), the client gets a JSON-RPC error for each
 * request still unanswered on this stream instead of waiting forever.
 */
import type { PendingRequests } from './pending.ts'
import { Readable } from 'node:stream'
import { errorResponse, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts'
import { FilterGate, type MessageFilter } from '../interceptors/apply.ts'
import { takeEventData } from './messages.ts'
import { encodeEvent } from '../sse/encode.ts'
import type { Logger } from '../logger.ts'
import type { UpstreamEvent, UpstreamEvents } from '../upstream/events.ts'
import type { Abort } from '../abort.ts'

export interface SseRelayOptions {
  /** The upstream's answer, as events. */
  source: UpstreamEvents
  /** Ids of the requests this stream must answer; emptied as responses pass. */
  pending?: PendingRequests
  /** Sees each valid message before it is written. */
  onMessage?: (message: JsonRpcMessage) => void
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

/** Where a relay writes. `write` returns false when the sink is full (the upstream pauses). */
interface RelaySink {
  /** One event for the client: its data (JSON-RPC text, or '' for an id alone) and its id. */
  write (data: string, id: string | undefined, event: UpstreamEvent | undefined): boolean
  /** Whether an event without JSON-RPC data (an id alone, a named event) is the client's too. */
  readonly wantsBare: boolean
  /** No more events. */
  end (): void
}

/** Reads `source` into `sink`; returns how to stop it early (the client went away). */
function relayInto (options: SseRelayOptions, sink: RelaySink): () => void {
  const { source, pending, onMessage, log } = options
  let done = false
  let sawEventId = false
  const write = (data: string, id: string | undefined, event: UpstreamEvent | undefined): void => {
    if (!sink.write(data, id, event)) source.pause()
  }
  for (const message of options.prelude ?? []) sink.write(JSON.stringify(message), undefined, undefined)
  const gate = options.filter === undefined ? undefined : new FilterGate(source, options.filter)

  const finish = (error: Error | undefined, flush: boolean): void => {
    if (done) return
    done = true
    if (flush) {
      if (pending !== undefined && pending.size > 0 && (error !== undefined || !sawEventId)) {
        for (const id of pending) {
          const { code, message } = options.unanswered(id, error)
          const answer = errorResponse(id, code, message)
          onMessage?.(answer)
          sink.write(JSON.stringify(answer), undefined, undefined)
        }
        pending.clear()
      }
      sink.end()
    }
    options.onDone?.(error)
  }

  source.read((event) => {
    if (done) return
    if (event.id !== undefined && sink.wantsBare) sawEventId = true
    if (event.data.length === 0 || event.event !== undefined) {
      if (sink.wantsBare) write(event.data, event.id, event)
      return
    }
    const taken = takeEventData(event, pending, onMessage, gate, (data) => {
      if (done) return
      if (data !== undefined) write(data, event.id, undefined)
      // Nothing left to send: the id alone keeps the client's resume point.
      else if (event.id !== undefined && sink.wantsBare) write('', event.id, undefined)
    })
    if (!taken) log.warn({ eventId: event.id }, 'dropped upstream SSE event: not JSON-RPC, or a response to no request pending on this stream')
  }, (error) => {
    if (error === undefined && gate !== undefined) void gate.idle().then(() => finish(undefined, true))
    else finish(error, true)
  })
  return () => {
    if (done) return
    // The client went away first: stop reading the upstream.
    finish(undefined, false)
    source.destroy()
  }
}

/** The unlogged SSE sink: a readable SSE body for the client. */
export function relaySse (options: SseRelayOptions): Readable {
  const { source } = options
  const out: Readable = new Readable({
    read () {
      source.resume()
    },
    destroy (err, callback) {
      stop()
      callback(err)
    }
  })
  const stop = relayInto(options, {
    wantsBare: true,
    write: (data, id, event) => out.push(encodeEvent(event === undefined ? { data, id } : event)),
    end: () => { out.push(null) }
  })
  return out
}

/**
 * The WebSocket sink: each message as one text frame, through `send`. Resolves once the answer is
 * complete, or the client went away (`signal`). A WebSocket has no resume point to keep, so ids
 * alone and named events are not sent. The connection drops a reader that falls too far behind,
 * so the relay does not pause for it.
 */
export function relayFrames (options: SseRelayOptions & { send: (text: string) => void, signal: Abort }): Promise<void> {
  return new Promise((resolve) => {
    const { signal, onDone } = options
    let stop: (() => void) | undefined
    const onAbort = (): void => { stop?.() }
    signal.once('abort', onAbort)
    stop = relayInto({
      ...options,
      onDone: (error) => {
        signal.off('abort', onAbort)
        onDone?.(error)
        resolve()
      }
    }, {
      wantsBare: false,
      write: (data) => {
        options.send(data)
        return true
      },
      end: () => {}
    })
    if (signal.aborted) stop()
  })
}
