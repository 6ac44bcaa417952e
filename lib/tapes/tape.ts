/**
 * A tape: one session's MCP traffic through the gateway, as JSONL. The first line is the header
 * (`{"tape":1,...}`: the upstream, the session, the client, when it started); each line after it is
 * one message, with its direction (`in`: client to upstream; `out`: upstream to client) and its
 * time in ms since the tape started. Arguments are redacted as the audit log's are.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import type { JsonRpcMessage } from '../jsonrpc.ts'

export interface TapeHeader {
  tape: 1
  upstream: string
  session: string
  client: Record<string, unknown> | null
  protocolVersion: string | null
  startedAt: string
}

export interface TapeEntry {
  /** Ms since the tape started. */
  t: number
  dir: 'in' | 'out'
  message: JsonRpcMessage
}

export interface Tape {
  header: TapeHeader
  entries: TapeEntry[]
}

export class TapeError extends Error {}

/** Reads a tape file whole (tapes are bounded in size when recorded). */
export async function readTape (path: string): Promise<Tape> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })
  let header: TapeHeader | undefined
  const entries: TapeEntry[] = []
  let n = 0
  for await (const line of lines) {
    n++
    if (line.trim().length === 0) continue
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      throw new TapeError(`${path}:${n}: not JSON`)
    }
    if (header === undefined) {
      if ((parsed as { tape?: unknown }).tape !== 1) throw new TapeError(`${path}:${n}: not a tape (its first line is no tape header)`)
      header = parsed as TapeHeader
      continue
    }
    const entry = parsed as Partial<TapeEntry>
    if (typeof entry.t !== 'number' || (entry.dir !== 'in' && entry.dir !== 'out') || entry.message === null || typeof entry.message !== 'object') throw new TapeError(`${path}:${n}: not a tape entry`)
    entries.push(entry as TapeEntry)
  }
  if (header === undefined) throw new TapeError(`${path}: empty, not a tape`)
  return { header, entries }
}

/** A recorded request and what the upstream sent for it: its answer, and the notifications before it. */
export interface RecordedExchange {
  request: { method: string, params: unknown, t: number }
  /** Messages the upstream sent between the request and its answer, with their delay after the request. */
  before: Array<{ delay: number, message: JsonRpcMessage }>
  answer: { delay: number, message: JsonRpcMessage } | undefined
}

/** The tape's requests, each with its answer and the server's messages that came before it. */
export function exchangesOf (tape: Tape): RecordedExchange[] {
  const open = new Map<string, RecordedExchange>()
  const out: RecordedExchange[] = []
  for (const entry of tape.entries) {
    const message = entry.message as { id?: unknown, method?: unknown, params?: unknown }
    if (entry.dir === 'in') {
      if (typeof message.method === 'string' && message.id !== undefined) {
        const exchange: RecordedExchange = { request: { method: message.method, params: message.params, t: entry.t }, before: [], answer: undefined }
        open.set(JSON.stringify(message.id), exchange)
        out.push(exchange)
      }
      continue
    }
    if (message.method === undefined && message.id !== undefined) {
      const key = JSON.stringify(message.id)
      const exchange = open.get(key)
      if (exchange !== undefined) {
        exchange.answer = { delay: entry.t - exchange.request.t, message: entry.message }
        open.delete(key)
      }
      continue
    }
    // A server message: progress goes with the open request whose token it names; a log message
    // with the request opened last (each message to one request, found among those still open).
    const { method, params } = entry.message as { method?: string, params?: { progressToken?: unknown } }
    let owner: RecordedExchange | undefined
    if (method === 'notifications/progress') {
      const token = params?.progressToken
      if (token !== undefined) for (const exchange of open.values()) if (progressTokenOf(exchange.request.params) === token) owner = exchange
    } else if (method === 'notifications/message') {
      owner = [...open.values()].at(-1)
    }
    owner?.before.push({ delay: entry.t - owner.request.t, message: entry.message })
  }
  return out
}

export function progressTokenOf (params: unknown): unknown {
  return (params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken
}
