/**
 * A message channel: one live connection to an upstream that speaks JSON-RPC messages in both
 * directions over its own transport (a stdio child, a legacy HTTP+SSE connection). The channel
 * upstream turns channels into Streamable HTTP answers.
 */
import type { JsonRpcMessage } from '../jsonrpc.ts'
import type { Caller } from '../upstream-auth/credentials.ts'

export interface MessageChannel {
  /**
   * Sends one message. Throws or rejects when it cannot be delivered (the channel is gone).
   * `caller`: whom it is for (auth on), for channels that make HTTP requests of their own (the
   * era bridge), whose upstream `auth` may act for the user.
   */
  send (message: JsonRpcMessage, caller?: Caller): void | Promise<void>
  /** Ends the channel politely, then by force (see each kind); resolves once it is gone. */
  close (): Promise<void>
  /** Ends the channel at once. */
  kill (): void
  /** Set by the owner before the first message can arrive. */
  onmessage: (message: JsonRpcMessage) => void
  /** Called once when the channel is gone, with why (always an error: nothing else ends it). */
  onclose: (reason: Error) => void
  /** The session's own stream opened (true) or closed (false) on this instance. */
  streaming? (open: boolean): void
  /** The session is over for everyone (deleted, expired), not only closed on this instance. */
  terminate? (): void
}

/**
 * Opens one channel; `label` names it in logs (the upstream session it serves); `principal`: who
 * opened it, when auth is on (a virtual server keeps private lists per principal).
 */
export type OpenChannel = (label: string, principal?: string) => Promise<MessageChannel>

/**
 * Splits a byte stream into lines without decoding more than once per line. A line split across
 * chunks is kept as its pieces and joined once when it ends, so a long line costs linear time.
 */
export class LineSplitter {
  /** The pending partial line, as received. */
  private pieces: Buffer[] = []
  private pendingBytes = 0
  private readonly maxBytes: number
  private readonly onLine: (line: Buffer) => void

  constructor (maxBytes: number, onLine: (line: Buffer) => void) {
    this.maxBytes = maxBytes
    this.onLine = onLine
  }

  /** Returns false when a line grew past the limit (the rest of the input is not read). */
  push (chunk: Buffer): boolean {
    let start = 0
    let end = chunk.indexOf(10)
    while (end !== -1) {
      let line = chunk.subarray(start, end)
      if (this.pieces.length > 0) {
        this.pieces.push(line)
        line = Buffer.concat(this.pieces, this.pendingBytes + line.length)
        this.pieces = []
        this.pendingBytes = 0
      }
      // A CR before the LF (CRLF), possibly the last byte of an earlier chunk.
      const stop = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length
      if (stop > 0) this.onLine(line.subarray(0, stop))
      start = end + 1
      end = chunk.indexOf(10, start)
    }
    if (start < chunk.length) {
      this.pendingBytes += chunk.length - start
      if (this.pendingBytes > this.maxBytes) {
        this.pieces = []
        this.pendingBytes = 0
        return false
      }
      this.pieces.push(chunk.subarray(start))
    }
    return true
  }

  /** What is left without a final newline. */
  flush (): void {
    const pieces = this.pieces
    const length = this.pendingBytes
    this.pieces = []
    this.pendingBytes = 0
    if (length > 0) this.onLine(pieces.length === 1 ? pieces[0] as Buffer : Buffer.concat(pieces, length))
  }
}
