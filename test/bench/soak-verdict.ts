/**
 * The soak's verdict, from its samples: for each series (RSS, heap, handles, live sessions), the
 * envelope of the last third of the run (after a one-minute warm-up), its lowest and its highest
 * sample, must stay within 10% (plus a small absolute slack) of the first third's; the
 * least-squares slope is shown. The envelope, not a median: the heap saws up and down over several
 * minutes as V8 grows and shrinks its old space, so a median depends on where in the cycle a window
 * falls, while a leak lifts the troughs and a runaway lifts the peaks.
 *
 * Also a command: `node dist/test/bench/soak-verdict.js soak.log` judges a logged run again.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface SoakSample { at: number, rss: number, heap: number, handles: number, sessions: number }

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

function slope (ats: number[], ys: number[]): number {
  const xs = ats.map((at) => at / 60)
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length
  const my = ys.reduce((a, b) => a + b, 0) / ys.length
  const num = xs.reduce((sum, x, i) => sum + (x - mx) * ((ys[i] as number) - my), 0)
  const den = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0)
  return den === 0 ? 0 : num / den
}

/** Writes the report; resolves whether the run passed. */
export function verdict (samples: SoakSample[], calls: number, errors: number, write: (line: string) => void): boolean {
  const steady = samples.filter((s) => s.at >= 60)
  if (steady.length < 6) throw new Error('run at least three minutes')
  const third = Math.floor(steady.length / 3)
  const first = steady.slice(0, third)
  const last = steady.slice(steady.length - third)
  const series: Array<[string, (s: SoakSample) => number, number, string, number]> = [
    ['RSS', (s) => s.rss, 2 ** 20, ' MiB', 0],
    ['heap', (s) => s.heap, 2 ** 20, ' MiB', 2 * 2 ** 20],
    ['handles', (s) => s.handles, 1, '', 10],
    ['live sessions', (s) => s.sessions, 1, '', 50]
  ]
  write(`${calls} calls, ${errors} errors\n`)
  let ok = errors === 0
  for (const [name, get, unit, label, slack] of series) {
    const low = (xs: SoakSample[]): number => Math.min(...xs.map(get))
    const high = (xs: SoakSample[]): number => Math.max(...xs.map(get))
    const good = low(last) <= low(first) * 1.1 + slack && high(last) <= high(first) * 1.1 + slack
    ok &&= good
    const range = (xs: SoakSample[]): string => `${(low(xs) / unit).toFixed(1)}-${(high(xs) / unit).toFixed(1)}${label}`
    write(`${name}: first third ${range(first)}, last third ${range(last)} (median ${(median(first.map(get)) / unit).toFixed(1)} -> ${(median(last.map(get)) / unit).toFixed(1)}), slope ${slope(steady.map((s) => s.at), steady.map((s) => get(s) / unit)).toFixed(2)}${label}/min ${good ? 'ok' : 'GREW'}\n`)
  }
  write(ok ? 'PASS: nothing grew past 10% between the first and the last third, no errors\n' : 'FAIL: something grew past 10%, or errors\n')
  return ok
}

/** The samples of a soak log (`t=…s rss=…MiB heap=…MiB handles=… sessions=…`). */
export function parseLog (text: string): { samples: SoakSample[], calls: number, errors: number } {
  const samples: SoakSample[] = []
  let calls = 0
  let errors = 0
  for (const match of text.matchAll(/^t=(\d+)s rss=([\d.]+)MiB heap=([\d.]+)MiB handles=(\d+) sessions=(\d+).* calls=(\d+) errors=(\d+)$/gm)) {
    samples.push({ at: Number(match[1]), rss: Number(match[2]) * 2 ** 20, heap: Number(match[3]) * 2 ** 20, handles: Number(match[4]), sessions: Number(match[5]) })
    calls = Number(match[6])
    errors = Number(match[7])
  }
  return { samples, calls, errors }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  const { samples, calls, errors } = parseLog(readFileSync(process.argv[2], 'utf8'))
  process.exitCode = verdict(samples, calls, errors, (line) => process.stdout.write(line)) ? 0 : 1
}
