/**
 * The audit file's hash chain: each line starts with its place (`seq`) and `prev`, the SHA-256 of
 * the line before it exactly as written (the first line's `prev` is 64 zeros). Editing a line
 * breaks the `prev` of the next; deleting one leaves a hole in `seq`. The head (`seq:hash` of the
 * last line) vouches for the end, which nothing in the file can.
 */
import { hash } from 'node:crypto'

export interface ChainHead {
  readonly seq: number
  /** SHA-256 (hex) of the last line. */
  readonly hash: string
}

export const GENESIS = '0'.repeat(64)

export const EMPTY_HEAD: ChainHead = Object.freeze({ seq: 0, hash: GENESIS })

export function lineHash (line: string): string {
  return hash('sha256', line)
}

/** The line for a record's JSON (an object) after `head`, and the head it makes. */
export function seal (json: string, head: ChainHead): { line: string, head: ChainHead } {
  const seq = head.seq + 1
  const start = `{"seq":${seq},"prev":"${head.hash}"`
  const line = json.length <= 2 ? `${start}}` : `${start},${json.slice(1)}`
  return { line, head: { seq, hash: lineHash(line) } }
}

export function formatHead (head: ChainHead): string {
  return `${head.seq}:${head.hash}`
}

/** `SEQ:HASH` as logged by the gateway, or undefined when it is not one. */
export function parseHead (text: string): ChainHead | undefined {
  const match = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim())
  return match === null ? undefined : { seq: Number(match[1]), hash: match[2] as string }
}

/** The chain fields of a line, or undefined when it is no audit record. */
export function chainFields (line: string): { seq: number, prev: string, record: Record<string, unknown> } | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return undefined
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined
  const record = parsed as Record<string, unknown>
  const { seq, prev } = record
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || typeof prev !== 'string' || !/^[0-9a-f]{64}$/.test(prev)) return undefined
  return { seq: seq as number, prev, record }
}
