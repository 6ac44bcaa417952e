/**
 * Reads an upstream SSE body into a logged stream: each valid JSON-RPC event is published (logged,
 * then written to the attached client). Never pauses for a slow client: the log absorbs it.
 */
import type { Readable } from 'node:stream'
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { acceptEventData } from '../relay/messages.ts'
import { SseParser } from '../sse/parser.ts'
import type { LiveStream } from './live-stream.ts'

export interface PumpOptions {
  source: Readable
  stream: LiveStream
  pending?: Set<JsonRpcId>
  onMessage?: (message: JsonRpcMessage) => void
  log: Logger
  maxLineLength?: number
}

export interface PumpResult {
  /** Set when the upstream stream broke rather than ended. */
  error: Error | undefined
  /** The upstream's last event id, to resume the upstream stream from. */
  lastUpstreamEventId: string | undefined
}

export function pumpSse (options: PumpOptions): Promise<PumpResult> {
  const { source, stream, pending, onMessage, log } = options
  let lastUpstreamEventId: string | undefined
  return new Promise((resolve) => {
    let settled = false
    const settle = (error: Error | undefined): void => {
      if (settled) return
      settled = true
      resolve({ error, lastUpstreamEventId })
    }
    const parser = new SseParser({
      maxLineLength: options.maxLineLength,
      onEvent (event) {
        if (event.id !== undefined && event.id !== '') lastUpstreamEventId = event.id
        if (event.data.length === 0 || event.event !== undefined) {
          if (event.id !== undefined && event.id !== '') stream.noteUpstreamEventId(event.id)
          return
        }
        if (!acceptEventData(event.data, pending, onMessage)) {
          log.warn({ upstreamEventId: event.id }, 'dropped upstream SSE event that is not JSON-RPC')
          return
        }
        stream.publish(event.data, event.id)
        const writer = stream.writer
        if (writer !== undefined && writer.saturated && !source.isPaused()) {
          // Let the client catch up before reading more: memory stays near the high-water mark.
          source.pause()
          void writer.drained().then(() => source.resume())
        }
      }
    })
    source.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk)
      } catch (err) {
        source.destroy()
        settle(err as Error)
      }
    })
    source.once('end', () => {
      parser.end()
      settle(undefined)
    })
    source.once('error', (err) => settle(err))
    source.once('close', () => settle(new Error('upstream stream closed')))
  })
}
