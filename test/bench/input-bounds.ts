/**
 * Input-bound benchmarks, in process (no servers): what a hostile peer's largest inputs cost.
 *
 * - Tool globs: a 24 KiB and a 1 MiB tool name against a few globs (what interceptors, rules and
 *   authorization do for each `tools/call`; the proxy refuses names past MAX_TOOL_NAME_LENGTH
 *   anyway, this shows the matcher itself is linear).
 *
 * `npm run bench` runs it after the others; `BENCH_ONLY=input npm run bench` runs it alone.
 */
import { globMatcher } from '../../lib/glob.ts'
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

export function benchInputBounds (): void {
  benchToolGlobs()
}
