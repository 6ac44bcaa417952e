/**
 * The logged SSE sink's reader: an upstream's events into a logged stream, each valid JSON-RPC
 * event published (logged, then written to the attached client). It waits for a client that
 * falls behind only as far as the writer's high-water mark: the log absorbs the rest.
 */
import type { PendingRequests } from '../relay/pending.ts'
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { FilterGate, type MessageFilter } from '../interceptors/apply.ts'
import { takeEventData } from '../relay/messages.ts'
import type { UpstreamEvents } from '../upstream/events.ts'
import type { LiveStream } from './live-stream.ts'

export interface PumpOptions {
  source: UpstreamEvents
  stream: LiveStream
  pending?: PendingRequests
  onMessage?: (message: JsonRpcMessage) => void
  log: Logger
  /** Interceptors: each event's messages go through this first (in order). */
  filter?: MessageFilter
  /**
   * Stop reading once `pending` is empty: a stream re-opened to resume an answer may be kept
   * open by the upstream after it.
   */
  untilAnswered?: boolean
}

export interface PumpResult {
  /** Set when the upstream stream broke rather than ended. */
  error: Error | undefined
  /** The upstream's last event id, to resume the upstream stream from. */
  lastUpstreamEventId: string | undefined
}

export function pumpEvents (options: PumpOptions): Promise<PumpResult> {
  const { source, stream, pending, onMessage, log } = options
  let lastUpstreamEventId: string | undefined
  return new Promise((resolve) => {
    let settled = false
    const settle = (error: Error | undefined): void => {
      if (settled) return
      settled = true
      resolve({ error, lastUpstreamEventId })
    }
    const publish = (data: string, id: string | undefined): void => {
      stream.publish(data, id)
      if (options.untilAnswered === true && pending !== undefined && pending.size === 0) {
        settle(undefined)
        source.destroy()
        return
      }
      const writer = stream.writer
      if (writer !== undefined && writer.saturated && !source.isPaused()) {
        // Let the client catch up before reading more: memory stays near the high-water mark.
        source.pause()
        void writer.drained().then(() => source.resume())
      }
    }
    const gate = options.filter === undefined ? undefined : new FilterGate(source, options.filter)
    source.read((event) => {
      if (settled) return
      const id = event.id
      if (id !== undefined && id !== '') lastUpstreamEventId = id
      if (event.data.length === 0 || event.event !== undefined) {
        if (id !== undefined && id !== '') stream.noteUpstreamEventId(id)
        return
      }
      const taken = takeEventData(event, pending, onMessage, gate, (data) => {
        if (data !== undefined) publish(data, id)
        // Nothing left to send: keep the upstream position for resuming.
        else if (id !== undefined && id !== '') stream.noteUpstreamEventId(id)
      })
      if (!taken) log.warn({ upstreamEventId: id }, 'dropped upstream SSE event: not JSON-RPC, or a response to no request pending on this stream')
    }, (error) => {
      if (error === undefined && gate !== undefined) void gate.idle().then(() => settle(undefined))
      else settle(error)
    })
  })
}
