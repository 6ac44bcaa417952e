import t from 'tap'
import { encodeComment, encodeEvent, encodeRetry, type SseEvent } from '../../lib/sse/encode.ts'
import { SseLineTooLongError, SseParser } from '../../lib/sse/parser.ts'

interface Parsed {
  events: SseEvent[]
  retries: number[]
  comments: string[]
}

function parseChunks (chunks: Array<string | Uint8Array>, maxLineLength?: number): Parsed {
  const out: Parsed = { events: [], retries: [], comments: [] }
  const parser = new SseParser({
    maxLineLength,
    onEvent: (event) => out.events.push(event),
    onRetry: (ms) => out.retries.push(ms),
    onComment: (text) => out.comments.push(text)
  })
  for (const chunk of chunks) parser.push(chunk)
  parser.end()
  return out
}

/** A tiny deterministic PRNG, so a failing split can be reproduced from its seed. */
function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

function splitRandomly (bytes: Uint8Array, random: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = []
  let pos = 0
  while (pos < bytes.length) {
    const size = 1 + Math.floor(random() * Math.min(16, bytes.length - pos))
    chunks.push(bytes.subarray(pos, pos + size))
    pos += size
  }
  return chunks
}

const STREAM = [
  '\uFEFF: hello comment',
  'retry: 1500',
  'id: 1',
  'data: {"jsonrpc":"2.0","method":"a"}',
  '',
  'event: message',
  'id: 2',
  'data: first line',
  'data: second ✓ line',
  '',
  'id: prime',
  'data:',
  '',
  'id: only-id',
  '',
  'event: custom',
  'data:no-space',
  'unknown: field',
  'data',
  '',
  'retry: nope',
  'id: bad\0id',
  'data: x',
  '',
  ''
]

const EXPECTED: SseEvent[] = [
  { id: '1', data: '{"jsonrpc":"2.0","method":"a"}' },
  { id: '2', data: 'first line\nsecond ✓ line' },
  { id: 'prime', data: '' },
  { id: 'only-id', data: '' },
  { event: 'custom', data: 'no-space\n' },
  { data: 'x' }
]

for (const [name, eol] of [['LF', '\n'], ['CRLF', '\r\n'], ['CR', '\r']] as const) {
  t.test(`parses a stream with ${name} line endings, in one piece and in random chunks`, async (t) => {
    const text = STREAM.join(eol)
    const whole = parseChunks([text])
    t.same(whole.events, EXPECTED)
    t.same(whole.retries, [1500])
    t.same(whole.comments, ['hello comment'])
    const bytes = new TextEncoder().encode(text)
    for (let seed = 1; seed <= 300; seed++) {
      const result = parseChunks(splitRandomly(bytes, prng(seed)))
      if (JSON.stringify(result) !== JSON.stringify(whole)) {
        t.fail(`seed ${seed} gave a different parse`)
        return
      }
    }
    t.pass('300 random splits parse the same')
    const perChar = parseChunks([...text])
    t.same(perChar.events, EXPECTED, 'one character at a time')
  })
}

t.test('an unterminated last event is discarded', async (t) => {
  t.same(parseChunks(['data: done\n\ndata: half']).events, [{ data: 'done' }])
})

t.test('lines over the limit throw instead of buffering without bound', async (t) => {
  let thrown: unknown
  try {
    parseChunks(['data: ' + 'x'.repeat(30), 'x'.repeat(30)], 50)
  } catch (err) {
    thrown = err
  }
  t.ok(thrown instanceof SseLineTooLongError)
  t.match(thrown, { code: 'SSE_LINE_TOO_LONG', name: 'SseLineTooLongError' })
  t.same(parseChunks(['data: ' + 'x'.repeat(40) + '\n\n'], 50).events, [{ data: 'x'.repeat(40) }])
})

t.test('encoder output round-trips through the parser', async (t) => {
  const events: SseEvent[] = [
    { data: '{"a":1}' },
    { id: '7', data: 'multi\nline\r\ndata' },
    { id: 'p', data: '' },
    { event: 'custom', data: 'z' },
    { event: 'message', id: '9', data: 'm' }
  ]
  const text = events.map(encodeEvent).join('') + encodeComment('keep\nalive') + encodeRetry(2500.7)
  const parsed = parseChunks([text])
  t.same(parsed.events, [
    { data: '{"a":1}' },
    { id: '7', data: 'multi\nline\ndata' },
    { id: 'p', data: '' },
    { event: 'custom', data: 'z' },
    { id: '9', data: 'm' }
  ])
  t.same(parsed.comments, ['keep alive'])
  t.same(parsed.retries, [2500])
})

/** What `push` threw on these chunks, if anything, and the events it gave first. */
function pushAll (parser: SseParser, chunks: Iterable<string | Uint8Array>): unknown {
  try {
    for (const chunk of chunks) parser.push(chunk)
  } catch (err) {
    return err
  }
  return undefined
}

t.test('one event\'s data is bounded across data: lines (maxEventLength, default maxLineLength)', async (t) => {
  const events: SseEvent[] = []
  const lines = function * (count: number): Generator<string> { for (let i = 0; i < count; i++) yield `data: ${'x'.repeat(1000)}\n` }
  // 1000-character lines pass a 1024 line cap; 300 of them are one 300 KB event.
  const byDefault = pushAll(new SseParser({ maxLineLength: 1024, onEvent: (event) => events.push(event) }), lines(300))
  t.match(byDefault, { name: 'SseEventTooLongError', code: 'SSE_EVENT_TOO_LONG', message: 'SSE event data longer than 1024 characters' }, 'the line cap is the default event cap')
  const explicit = pushAll(new SseParser({ maxLineLength: 1024, maxEventLength: 10_000, onEvent: (event) => events.push(event) }), lines(300))
  t.match(explicit, { code: 'SSE_EVENT_TOO_LONG', message: 'SSE event data longer than 10000 characters' })
  t.same(events, [], 'nothing dispatched')

  const fits = new SseParser({ maxLineLength: 1024, maxEventLength: 10_000, onEvent: (event) => events.push(event) })
  t.equal(pushAll(fits, [...lines(9), '\n', ...lines(9), '\n']), undefined, 'events under the cap, one after another')
  t.equal(events.length, 2)
  t.equal(events[0]?.data.length, 9 * 1000 + 8)
  t.throws(() => new SseParser({ maxEventLength: 0, onEvent: () => {} }), { message: /maxEventLength/ })
})

t.test('a long line in small chunks is parsed in linear time', async (t) => {
  // 2 MiB in 1 KiB chunks: rescanning what is pending on every chunk reads ~2 GB here (seconds);
  // a linear parser reads each character once (milliseconds).
  const chunk = 'x'.repeat(1024)
  const events: SseEvent[] = []
  const parser = new SseParser({ onEvent: (event) => events.push(event) })
  const started = performance.now()
  parser.push('data: ')
  for (let i = 0; i < 2048; i++) parser.push(chunk)
  parser.push('\r')
  parser.push('\n\n')
  const ms = performance.now() - started
  t.equal(events.length, 1)
  t.equal(events[0]?.data.length, 2 * 1024 * 1024)
  t.ok(ms < 400, `${ms.toFixed(0)} ms`)
})

t.test('many data: lines of one event in small chunks: linear too', async (t) => {
  const events: SseEvent[] = []
  const parser = new SseParser({ onEvent: (event) => events.push(event) })
  const line = `data: ${'y'.repeat(1017)}\n`
  const started = performance.now()
  for (let i = 0; i < 4096; i++) parser.push(line)
  parser.push('\n')
  const ms = performance.now() - started
  t.equal(events[0]?.data.length, 4096 * 1018 - 1)
  t.ok(ms < 400, `${ms.toFixed(0)} ms`)
})

t.test('one leading byte order mark is dropped, as the spec says, not two', async (t) => {
  const one = parseChunks([new TextEncoder().encode('\uFEFFdata: x\n\n')])
  t.same(one.events.map((e) => e.data), ['x'])
  // A second BOM is part of the first line: its field name is then "\uFEFFdata", which is no field.
  const two = parseChunks([new TextEncoder().encode('\uFEFF\uFEFFdata: x\n\ndata: y\n\n')])
  t.same(two.events.map((e) => e.data), ['y'])
})
