/**
 * Property-based tests of the two parsers every byte from outside goes through: the JSON-RPC
 * parser (client bodies, upstream answers) and the SSE parser (upstream streams).
 */
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import fc from 'fast-check'
import { INVALID_REQUEST, MAX_DEPTH, PARSE_ERROR, messageKind, nestsDeeperThan, parseMessages } from '../../lib/jsonrpc.ts'
import { encodeEvent, type SseEvent } from '../../lib/sse/encode.ts'
import { SseLineTooLongError, SseParser } from '../../lib/sse/parser.ts'

const RUNS = 5000

/** JSON-RPC-shaped values: right and wrong field types, in and out of batches. */
const id = fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.double(), fc.boolean(), fc.object())
const shaped = fc.record({
  jsonrpc: fc.oneof(fc.constant('2.0'), fc.string()),
  id,
  method: fc.oneof(fc.constantFrom('initialize', 'tools/call', 'ping', 'notifications/cancelled'), fc.string(), fc.integer()),
  params: fc.oneof(fc.object(), fc.array(fc.anything()), fc.string()),
  result: fc.oneof(fc.object(), fc.string()),
  error: fc.oneof(fc.record({ code: fc.integer(), message: fc.string() }), fc.anything())
}, { requiredKeys: [] })
const bodies = fc.oneof(
  fc.string(),
  fc.json(),
  shaped.map((value) => JSON.stringify(value)),
  fc.array(shaped).map((value) => JSON.stringify(value)),
  fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('latin1'))
)

t.test('parseMessages is total: valid messages, or -32700 / -32600', async (t) => {
  fc.assert(fc.property(bodies, (text) => {
    const parsed = parseMessages(text)
    if (parsed.ok) return parsed.messages.length > 0 && parsed.messages.every((message) => messageKind(message) !== undefined)
    return parsed.code === PARSE_ERROR || parsed.code === INVALID_REQUEST
  }), { numRuns: RUNS })
  t.pass(`${RUNS} bodies`)
})

t.test('nesting depth: agrees with the parsed value', async (t) => {
  const depthOf = (value: unknown): number => typeof value === 'object' && value !== null
    ? 1 + Math.max(0, ...Object.values(value).map(depthOf))
    : 0
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 80 }), (value) => {
    const text = JSON.stringify(value)
    return nestsDeeperThan(text, MAX_DEPTH) === (depthOf(value) > MAX_DEPTH)
  }), { numRuns: RUNS })
  t.pass(`${RUNS} values`)
})

const events = fc.array(fc.record({
  data: fc.string().map((s) => s.replace(/\r/g, '')),
  id: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), { nil: undefined }),
  event: fc.option(fc.stringMatching(/^[a-z]{1,8}$/), { nil: undefined })
}), { maxLength: 20 })

function parse (chunks: Uint8Array[], maxLineLength?: number): SseEvent[] {
  const out: SseEvent[] = []
  const parser = new SseParser({ onEvent: (event) => out.push(event), maxLineLength })
  for (const chunk of chunks) parser.push(chunk)
  parser.end()
  return out
}

t.test('SSE: the same events however the bytes are cut', async (t) => {
  fc.assert(fc.property(events, fc.array(fc.nat()), (list, cuts) => {
    const bytes = Buffer.from(list.map((event) => encodeEvent(event)).join(''))
    const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
    const chunks: Uint8Array[] = []
    let from = 0
    for (const point of points) {
      chunks.push(bytes.subarray(from, point))
      from = point
    }
    chunks.push(bytes.subarray(from))
    // What was encoded, not the parser compared with itself: every encoded event has a data line,
    // so every one is dispatched (WHATWG: even with empty data), with its own id and type.
    const expected = list.map((event) => ({ data: event.data, id: event.id, event: event.event }))
    const seen = (out: SseEvent[]): unknown[] => out.map((event) => ({ data: event.data, id: event.id, event: event.event }))
    return isDeepStrictEqual(seen(parse([bytes])), expected) && isDeepStrictEqual(seen(parse(chunks)), expected)
  }), { numRuns: RUNS })
  t.pass(`${RUNS} streams`)
})

t.test('SSE: arbitrary bytes never throw, except a line past the limit', async (t) => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 512 })), (chunks) => {
    try {
      parse(chunks, 256)
      return true
    } catch (err) {
      return err instanceof SseLineTooLongError
    }
  }), { numRuns: RUNS })
  t.pass(`${RUNS} byte streams`)
})
