/**
 * A message channel: one live connection to an upstream that speaks JSON-RPC messages in both
 * directions over its own transport (a stdio child, a legacy HTTP+SSE connection). The channel
 * upstream turns channels into Streamable HTTP answers.
 */
import type { JsonRpcMessage } from '../jsonrpc.ts'

export interface MessageChannel {
  /** Sends one message. Throws or rejects when it cannot be delivered (the channel is gone). */
  send (message: JsonRpcMessage): void | Promise<void>
  /** Ends the channel politely, then by force (see each kind); resolves once it is gone. */
  close (): Promise<void>
  /** Ends the channel at once. */
  kill (): void
  /** Set by the owner before the first message can arrive. */
  onmessage: (message: JsonRpcMessage) => void
  /** Called once when the channel is gone, with why (always an error: nothing else ends it). */
  onclose: (reason: Error) => void
}

/** Opens one channel; `label` names it in logs (the upstream session it serves). */
export type OpenChannel = (label: string) => Promise<MessageChannel>

/** Splits a byte stream into lines without decoding more than once per line. */
export class LineSplitter {
  private rest: Buffer | undefined
  private readonly maxBytes: number
  private readonly onLine: (line: Buffer) => void

  constructor (maxBytes: number, onLine: (line: Buffer) => void) {
    this.maxBytes = maxBytes
    this.onLine = onLine
  }

  /** Returns false when a line grew past the limit (the rest of the input is not read). */
  push (chunk: Buffer): boolean {
    let data = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk])
    this.rest = undefined
    let start = 0
    let end = data.indexOf(10)
    while (end !== -1) {
      const stop = end > start && data[end - 1] === 13 ? end - 1 : end
      if (stop > start) this.onLine(data.subarray(start, stop))
      start = end + 1
      end = data.indexOf(10, start)
    }
    if (start < data.length) {
      data = data.subarray(start)
      if (data.length > this.maxBytes) return false
      this.rest = data
    }
    return true
  }

  /** What is left without a final newline. */
  flush (): void {
    const rest = this.rest
    this.rest = undefined
    if (rest !== undefined && rest.length > 0) this.onLine(rest)
  }
}
