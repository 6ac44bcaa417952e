/**
 * `tape diff A B`: what two tapes' servers answered differently. Requests are paired by method and
 * params (`_meta` aside), in order; each pair's answers are compared as canonical JSON (ids aside),
 * and requests only one tape made are listed. Timing is not compared (it never repeats exactly).
 */
import { canonicalJson } from '../audit/record.ts'
import { exchangesOf, type RecordedExchange, type Tape } from './tape.ts'

export interface TapeDifference {
  request: string
  kind: 'answer' | 'only-in-a' | 'only-in-b'
  a?: unknown
  b?: unknown
}

function requestText (exchange: RecordedExchange): string {
  const params = exchange.request.params
  const shown = params !== null && typeof params === 'object' ? Object.fromEntries(Object.entries(params).filter(([key]) => key !== '_meta')) : params
  return `${exchange.request.method} ${canonicalJson(shown ?? null)}`
}

function answerOf (exchange: RecordedExchange): unknown {
  const message = exchange.answer?.message as Record<string, unknown> | undefined
  if (message === undefined) return null
  const { id, jsonrpc, ...rest } = message
  return rest
}

function grouped (tape: Tape): Map<string, RecordedExchange[]> {
  const out = new Map<string, RecordedExchange[]>()
  for (const exchange of exchangesOf(tape)) {
    const key = requestText(exchange)
    const list = out.get(key)
    if (list === undefined) out.set(key, [exchange])
    else list.push(exchange)
  }
  return out
}

export function diffTapes (a: Tape, b: Tape): TapeDifference[] {
  const left = grouped(a)
  const right = grouped(b)
  const differences: TapeDifference[] = []
  for (const [request, ours] of left) {
    const theirs = right.get(request) ?? []
    for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
      const x = ours[i]
      const y = theirs[i]
      if (y === undefined) differences.push({ request, kind: 'only-in-a', a: answerOf(x as RecordedExchange) })
      else if (x === undefined) differences.push({ request, kind: 'only-in-b', b: answerOf(y) })
      else if (canonicalJson(answerOf(x)) !== canonicalJson(answerOf(y))) differences.push({ request, kind: 'answer', a: answerOf(x), b: answerOf(y) })
    }
  }
  for (const [request, theirs] of right) {
    if (left.has(request)) continue
    for (const y of theirs) differences.push({ request, kind: 'only-in-b', b: answerOf(y) })
  }
  return differences
}
