/**
 * Incremental Server-Sent Events parser (WHATWG HTML, "server-sent events" interpretation rules).
 *
 * Chunks may split anywhere: inside a UTF-8 sequence, a line, or between the CR and LF of a CRLF.
 * Unlike a browser EventSource, an event that carries only an `id` is still reported (with empty
 * data): MCP servers send such "priming" events to hand the client a resumption point.
 */
import { StringDecoder } from 'node:string_decoder'
import type { SseEvent } from './encode.ts'

export interface SseParserOptions {
  onEvent: (event: SseEvent) => void
  onRetry?: (milliseconds: number) => void
  onComment?: (text: string) => void
  /**
   * Longest line accepted, in UTF-16 code units; a longer one throws `SseLineTooLongError`, so a
   * hostile upstream cannot make the parser buffer without bound.
   * @default 16 MiB
   */
  maxLineLength?: number
  /**
   * Longest data one event may gather across its `data:` lines, in UTF-16 code units; more throws
   * `SseEventTooLongError` (callers treat it as they treat a line over `maxLineLength`: the
   * stream is broken). Without it, many short lines could make one event buffer without bound.
   * @default maxLineLength
   */
  maxEventLength?: number
}

export class SseLineTooLongError extends Error {
  override readonly name = 'SseLineTooLongError'
  readonly code = 'SSE_LINE_TOO_LONG'
}

export class SseEventTooLongError extends Error {
  override readonly name = 'SseEventTooLongError'
  readonly code = 'SSE_EVENT_TOO_LONG'
}

const DEFAULT_MAX_LINE = 16 * 1024 * 1024

function positiveInteger (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`SseParser: ${name} must be a positive integer`)
  return value
}

export class SseParser {
  private readonly onEvent: (event: SseEvent) => void
  private readonly onRetry: ((milliseconds: number) => void) | undefined
  private readonly onComment: ((text: string) => void) | undefined
  private readonly maxLineLength: number
  private readonly maxEventLength: number
  /**
   * Node's StringDecoder, not TextDecoder: about 5x faster on streamed chunks (measured: 1 MiB in
   * 64 KiB chunks, 0.24 ms against 1.3 ms), with the same replacement of invalid sequences. It
   * keeps a leading BOM, which `push` drops itself (one, as the spec says).
   */
  private readonly decoder = new StringDecoder('utf8')
  /** The current line's text from earlier chunks, joined once when the line ends. */
  private pending: string[] = []
  private pendingLength = 0
  private skipLeadingLF = false
  private firstChunk = true
  private data = ''
  private hasData = false
  private id: string | undefined = undefined
  private eventType: string | undefined = undefined

  constructor (options: SseParserOptions) {
    this.onEvent = options.onEvent
    this.onRetry = options.onRetry
    this.onComment = options.onComment
    this.maxLineLength = positiveInteger('maxLineLength', options.maxLineLength, DEFAULT_MAX_LINE)
    this.maxEventLength = positiveInteger('maxEventLength', options.maxEventLength, this.maxLineLength)
  }

  push (chunk: Uint8Array | string): void {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk as Buffer)
    if (text.length === 0) return
    if (this.firstChunk) {
      this.firstChunk = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    if (this.skipLeadingLF) {
      this.skipLeadingLF = false
      if (text.charCodeAt(0) === 10) text = text.slice(1)
    }
    // Only the new text is searched for line ends: what is pending holds none, so each character
    // is looked at once however the input is chunked.
    let pos = 0
    let lf = text.indexOf('\n')
    let cr = text.indexOf('\r')
    while (lf !== -1 || cr !== -1) {
      let end: number
      let next: number
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf
        next = lf + 1
      } else {
        end = cr
        if (cr + 1 < text.length) {
          next = text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1
        } else {
          // A CR at the very end may be half of a CRLF whose LF starts the next chunk.
          next = cr + 1
          this.skipLeadingLF = true
        }
      }
      this.line(this.takeLine(text.slice(pos, end)))
      pos = next
      if (lf !== -1 && lf < pos) lf = text.indexOf('\n', pos)
      if (cr !== -1 && cr < pos) cr = text.indexOf('\r', pos)
    }
    if (pos < text.length) {
      this.pendingLength += text.length - pos
      if (this.pendingLength > this.maxLineLength) {
        this.pending = []
        this.pendingLength = 0
        throw new SseLineTooLongError(`SSE line longer than ${this.maxLineLength} characters`)
      }
      this.pending.push(pos === 0 ? text : text.slice(pos))
    }
  }

  /** The whole line ending with `last`: the pending pieces, if any, joined with it. */
  private takeLine (last: string): string {
    if (this.pending.length === 0) return last
    this.pending.push(last)
    const line = this.pending.join('')
    this.pending = []
    this.pendingLength = 0
    return line
  }

  /** Ends the input. Per the SSE rules an unterminated last event is discarded, not dispatched. */
  end (): void {
    const tail = this.decoder.end()
    if (tail.length > 0) this.push(tail)
    this.pending = []
    this.pendingLength = 0
    this.reset()
  }

  private reset (): void {
    this.data = ''
    this.hasData = false
    this.id = undefined
    this.eventType = undefined
  }

  private line (line: string): void {
    if (line.length === 0) {
      this.dispatch()
      return
    }
    const colon = line.indexOf(':')
    if (colon === 0) {
      this.onComment?.(line.charCodeAt(1) === 32 ? line.slice(2) : line.slice(1))
      return
    }
    let field: string
    let value: string
    if (colon === -1) {
      field = line
      value = ''
    } else {
      field = line.slice(0, colon)
      value = line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1)
    }
    switch (field) {
      case 'data': {
        const length = this.hasData ? this.data.length + 1 + value.length : value.length
        if (length > this.maxEventLength) {
          this.reset()
          throw new SseEventTooLongError(`SSE event data longer than ${this.maxEventLength} characters`)
        }
        // Appending makes a rope (no copy); it is flattened once, by whoever reads the event.
        this.data = this.hasData ? this.data + '\n' + value : value
        this.hasData = true
        break
      }
      case 'id':
        if (!value.includes('\0')) this.id = value
        break
      case 'event':
        this.eventType = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry?.(Number(value))
        break
      default:
        // Unknown fields are ignored, as the SSE rules require.
        break
    }
  }

  private dispatch (): void {
    if (this.hasData || this.id !== undefined) {
      const event: SseEvent = { data: this.data }
      if (this.id !== undefined) event.id = this.id
      // 'message' is the default type: report it as no type, so both spellings look alike.
      if (this.eventType !== undefined && this.eventType !== '' && this.eventType !== 'message') event.event = this.eventType
      this.onEvent(event)
    }
    this.reset()
  }
}
