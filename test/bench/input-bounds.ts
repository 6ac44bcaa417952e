/**
 * Input-bound benchmarks, in process (no servers): what a hostile peer's largest inputs cost.
 *
 * - Tool globs: a 24 KiB and a 1 MiB tool name against a few globs (what interceptors, rules and
 *   authorization do for each `tools/call`; the proxy refuses names past MAX_TOOL_NAME_LENGTH
 *   anyway, this shows the matcher itself is linear).
 * - SSE: one event of 4 MiB and of 16 MiB fed to the parser in 1 KiB chunks, as one `data:` line
 *   and as 1 KiB `data:` lines (the time per MiB should not grow with the size: linear); and the
 *   stdio line splitter on a 4 and 16 MiB line in 1 KiB chunks.
 *
 * `npm run bench` runs it after the others; `BENCH_ONLY=input npm run bench` runs it alone.
 */
import { globMatcher } from '../../lib/glob.ts'
import { SseParser } from '../../lib/sse/parser.ts'
import { LineSplitter } from '../../lib/upstream/channel.ts'
import { median } from './load.ts'

function timeMs (fn: () => void, runs = 5): number {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    fn()
    samples.push(performance.now() - started)
  }
  return median(samples)
}

const GLOBS = ['*delete*', '*a*b', 'danger*', '*read*file*', '*aaaab*x*b', '*aaaaaaaac*']

export function benchToolGlobs (): void {
  const globs = globMatcher(GLOBS)
  for (const [label, length] of [['24 KiB', 24 * 1024], ['1 MiB', 1 << 20]] as const) {
    // Runs of `a` (ending in `b` or not): segments match, or almost match, everywhere; the worst
    // case for a backtracking regex (`^.*a.*b$` is quadratic on it) and for the segment search.
    const names = [`${'a'.repeat(length - 1)}b`, 'a'.repeat(length)]
    const ms = timeMs(() => { for (const name of names) globs.test(name) }) / names.length
    console.log(`tool globs: a ${label} tool name against ${GLOBS.length} globs (${GLOBS.join(' ')}): ${ms.toFixed(2)} ms`)
  }
}

const MiB = 1024 * 1024
const KiB_TEXT = 'x'.repeat(1024)
const KiB_BYTES = Buffer.alloc(1024, 0x78)

/** Feeds one event of `size` bytes in 1 KiB chunks; returns the time in ms. */
function feedEvent (size: number, lines: 'one line' | '1 KiB lines'): number {
  let got = 0
  // Caps above the event: this measures the work, not the refusal.
  const parser = new SseParser({ maxLineLength: 64 * MiB, maxEventLength: 64 * MiB, onEvent: (event) => { got = event.data.length } })
  const line = `data: ${'x'.repeat(1024 - 7)}\n`
  return timeMs(() => {
    if (lines === 'one line') {
      parser.push('data: ')
      for (let i = 0; i < size / 1024; i++) parser.push(KiB_TEXT)
      parser.push('\n\n')
    } else {
      for (let i = 0; i < size / 1024; i++) parser.push(line)
      parser.push('\n')
    }
    if (got === 0) throw new Error('no event')
  }, 3)
}

export function benchSse (): void {
  for (const lines of ['one line', '1 KiB lines'] as const) {
    const small = feedEvent(4 * MiB, lines)
    const large = feedEvent(16 * MiB, lines)
    console.log(`SSE parser, one event in 1 KiB chunks (${lines}): 4 MiB ${small.toFixed(1)} ms, 16 MiB ${large.toFixed(1)} ms (${(large / small).toFixed(1)}x for 4x the size)`)
  }
  const split = (size: number): number => timeMs(() => {
    const splitter = new LineSplitter(64 * MiB, () => {})
    for (let i = 0; i < size / 1024; i++) splitter.push(KiB_BYTES)
    splitter.push(Buffer.from('\n'))
  }, 3)
  const small = split(4 * MiB)
  const large = split(16 * MiB)
  console.log(`stdio line splitter, one line in 1 KiB chunks: 4 MiB ${small.toFixed(1)} ms, 16 MiB ${large.toFixed(1)} ms (${(large / small).toFixed(1)}x for 4x the size)`)
}

export function benchInputBounds (): void {
  benchToolGlobs()
  benchSse()
}
