/**
 * What an audit record holds, and the two things done to a request's arguments before they are
 * written: a digest of their canonical JSON (keys sorted, so equal arguments match whatever order a
 * client sent them in) and, when asked for, a copy with secrets hidden at any depth.
 */
import { hash } from 'node:crypto'
import { globMatcher, type GlobMatcher } from '../glob.ts'
import type { Effect } from '../policy/policy.ts'
import type { MemberName } from '../upstream/types.ts'

/** How a recorded request ended. */
export type AuditOutcome = 'ok' | 'error' | 'denied' | 'timeout' | 'failed' | 'cancelled'

export interface AuditRecord {
  time: string
  /** `request`: one client request; `gap`: records the log lost; `pin`: a tool pin's change. */
  type: 'request' | 'gap' | 'pin'
  method?: string
  principal?: string | null
  session?: string | null
  upstream?: string
  /** Behind a virtual server: the member upstream and the tool's or prompt's own name there. */
  member?: MemberName
  tool?: string
  prompt?: string
  resource?: string
  argumentsDigest?: string
  arguments?: unknown
  decision?: Effect | null
  rule?: string | null
  approval?: string | null
  approver?: string | null
  durationMs?: number
  outcome?: AuditOutcome
  error?: { code: number, message: string }
  /** A gap: how many records are missing before this one, and why. */
  lost?: number
  reason?: string
  /** A pin: what happened, the definition's hash, and the one it replaces. */
  change?: string
  hash?: string
  previous?: string | null
}

export const REDACTED = '[redacted]'

/** Keys whose values redacted arguments hide (case-insensitive globs, `*` any run). */
export const DEFAULT_REDACT = ['*password*', '*passwd*', '*secret*', '*token*', '*api*key*', '*authorization*', '*credential*', '*private*key*', '*cookie*']

/** Deeper than this, canonical JSON is made without recursion (arguments can nest arbitrarily). */
const RECURSION_DEPTH = 64

type Json = Record<string, unknown>

function plainValue (value: unknown): unknown {
  // Dates and the like serialize as JSON.stringify would; JSON-parsed input has none.
  return value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function'
    ? (value as { toJSON: () => unknown }).toJSON()
    : value
}

function objectKeys (value: Json): string[] {
  return Object.keys(value).filter((key) => {
    const type = typeof value[key]
    return type !== 'undefined' && type !== 'function' && type !== 'symbol'
  }).sort()
}

function recursive (input: unknown, depth: number): string | undefined {
  const value = plainValue(input)
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (depth > RECURSION_DEPTH) return undefined
  const parts: string[] = []
  if (Array.isArray(value)) {
    for (const item of value) {
      const part = recursive(item, depth + 1)
      if (part === undefined) return undefined
      parts.push(part)
    }
    return `[${parts.join(',')}]`
  }
  for (const key of objectKeys(value as Json)) {
    const part = recursive((value as Json)[key], depth + 1)
    if (part === undefined) return undefined
    parts.push(`${JSON.stringify(key)}:${part}`)
  }
  return `{${parts.join(',')}}`
}

interface Frame { items: unknown[], keys: string[] | undefined, at: number }

/** The same text as `recursive`, with an explicit stack: no depth can overflow the call stack. */
function iterative (input: unknown): string {
  const out: string[] = []
  const stack: Frame[] = []
  let next: unknown = input
  let pending = true
  for (;;) {
    if (pending) {
      const value = plainValue(next)
      if (Array.isArray(value)) {
        out.push('[')
        stack.push({ items: value, keys: undefined, at: 0 })
      } else if (value !== null && typeof value === 'object') {
        const keys = objectKeys(value as Json)
        out.push('{')
        stack.push({ items: keys.map((key) => (value as Json)[key]), keys, at: 0 })
      } else {
        out.push(JSON.stringify(value) ?? 'null')
      }
      pending = false
    }
    const top = stack[stack.length - 1]
    if (top === undefined) return out.join('')
    if (top.at === top.items.length) {
      out.push(top.keys === undefined ? ']' : '}')
      stack.pop()
      continue
    }
    if (top.at > 0) out.push(',')
    if (top.keys !== undefined) out.push(`${JSON.stringify(top.keys[top.at])}:`)
    next = top.items[top.at++]
    pending = true
  }
}

/** JSON with object keys sorted at every depth (what a digest of "the same arguments" needs). */
export function canonicalJson (value: unknown): string {
  return recursive(value, 0) ?? iterative(value)
}

/** `sha256:<hex>` of the arguments' canonical JSON. */
export function argumentsDigest (args: unknown): string {
  return 'sha256:' + hash('sha256', canonicalJson(args))
}

/** Copies arguments with the values of secret-looking keys replaced, at any depth. */
export class Redactor {
  private readonly matcher: GlobMatcher

  constructor (globs: readonly string[]) {
    this.matcher = globMatcher(globs.map((glob) => glob.toLowerCase()))
  }

  redact (value: unknown): unknown {
    const stack: Array<[object, Json | unknown[]]> = []
    const root = shell(value, stack)
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const [from, to] = top
      if (Array.isArray(from)) {
        for (let i = 0; i < from.length; i++) (to as unknown[])[i] = shell(from[i], stack)
        continue
      }
      // Null-prototype copies: a "__proto__" key stays an own key, never a prototype.
      for (const key of Object.keys(from)) {
        (to as Json)[key] = this.matcher.test(key.toLowerCase()) ? REDACTED : shell((from as Json)[key], stack)
      }
    }
    return root
  }
}

/** An empty copy of an object or array, queued to be filled; anything else as it is. */
function shell (value: unknown, stack: Array<[object, Json | unknown[]]>): unknown {
  if (value === null || typeof value !== 'object') return value
  const copy = Array.isArray(value) ? [] : Object.create(null) as Json
  stack.push([value, copy])
  return copy
}
