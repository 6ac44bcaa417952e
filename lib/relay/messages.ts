import { messageKind, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts'
import type { FilterGate } from '../interceptors/apply.ts'
import type { PendingRequests } from './pending.ts'
import type { UpstreamEvent } from '../upstream/events.ts'

type Parsed = { messages: JsonRpcMessage[], batch: boolean }

/**
 * Checks one SSE event's data from an upstream: JSON, and a JSON-RPC message (or a batch of them
 * for 2025-03-26). Answers remove their ids from `pending`; `onMessage` sees each message.
 * Returns false for data a client must not get: not JSON-RPC, or (on a stream that answers known
 * requests) a response to no request still pending there: a stray or a duplicate.
 */
export function acceptEventData (data: string, pending: PendingRequests | undefined, onMessage: ((message: JsonRpcMessage) => void) | undefined, given?: Parsed): boolean {
  const parsed = given ?? parseEventData(data)
  if (parsed === undefined || (pending !== undefined && hasStray(parsed.messages, pending))) return false
  noteMessages(parsed.messages, pending, onMessage)
  return true
}

/**
 * Whether a response among `messages` answers no request in `pending` (the event holding them is
 * dropped; each such response is counted by `pending`).
 */
export function hasStray (messages: readonly JsonRpcMessage[], pending: PendingRequests): boolean {
  let stray = false
  for (const message of messages) {
    if ('method' in message) continue
    // An error with a null id (the upstream could not read the request) cannot be matched: let it be.
    const id = (message as { id: JsonRpcId | null }).id
    if (id !== null && !pending.has(id)) {
      pending.drop(id)
      stray = true
    }
  }
  return stray
}

/**
 * A whole JSON answer to one POST, cleaned: responses to no request of that POST (strays) and
 * second answers to one (duplicates) are dropped, in order, and counted by `asked`, whose open
 * ids are not changed.
 */
export function dropUnasked (messages: JsonRpcMessage[], asked: PendingRequests): { messages: JsonRpcMessage[], changed: boolean } {
  let answered: Set<JsonRpcId> | undefined
  let out: JsonRpcMessage[] | undefined
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as JsonRpcMessage
    const id = 'method' in message ? null : (message as { id: JsonRpcId | null }).id
    // Requests, notifications and null-id errors (the upstream could not read the request) pass.
    let keep = id === null
    if (!keep) {
      answered ??= new Set()
      keep = asked.has(id as JsonRpcId) && !answered.has(id as JsonRpcId)
      if (!keep && answered.has(id as JsonRpcId)) asked.onDrop?.('duplicate')
      else if (!keep) asked.drop(id as JsonRpcId)
      answered.add(id as JsonRpcId)
    }
    if (keep) out?.push(message)
    else out ??= messages.slice(0, i)
  }
  return out === undefined ? { messages, changed: false } : { messages: out, changed: true }
}

/** Ids in `asked` that no response among `messages` answers (null-id errors answer nothing). */
export function unansweredIds (messages: readonly JsonRpcMessage[], asked: ReadonlySet<JsonRpcId>): JsonRpcId[] {
  if (asked.size === 0) return []
  const left = new Set(asked)
  for (const message of messages) {
    if (!('method' in message)) left.delete((message as { id: JsonRpcId }).id)
  }
  return [...left]
}

/** An event's data as JSON-RPC messages (and whether it was a batch), or undefined if it is not. */
export function parseEventData (data: string): { messages: JsonRpcMessage[], batch: boolean } | undefined {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return undefined
  }
  const batch = Array.isArray(value)
  const messages = (batch ? value : [value]) as unknown[]
  if (messages.length === 0 || !messages.every((m) => messageKind(m) !== undefined)) return undefined
  return { messages: messages as JsonRpcMessage[], batch }
}

/** What `acceptEventData` does after parsing: answers leave `pending`, `onMessage` sees each. */
export function noteMessages (messages: readonly JsonRpcMessage[], pending: PendingRequests | undefined, onMessage: ((message: JsonRpcMessage) => void) | undefined): void {
  for (const message of messages) {
    const kind = messageKind(message)
    if ((kind === 'response' || kind === 'error') && pending !== undefined) pending.delete((message as { id: JsonRpcId }).id)
    onMessage?.(message)
  }
}

/**
 * One upstream event's messages, the way both stream readers take them: checked (false: drop it),
 * then through the interceptors when there are any, then handed to `emit` in order: the data to
 * send (the original text when nothing changed), or undefined when nothing is left of it. Events
 * a channel made come parsed; an SSE event's data is parsed here, once.
 */
export function takeEventData (
  event: UpstreamEvent,
  pending: PendingRequests | undefined,
  onMessage: ((message: JsonRpcMessage) => void) | undefined,
  gate: FilterGate | undefined,
  emit: (data: string | undefined) => void
): boolean {
  const data = event.data
  if (gate === undefined) {
    if (!acceptEventData(data, pending, onMessage, event.parsed)) return false
    emit(data)
    return true
  }
  const parsed = event.parsed ?? parseEventData(data)
  if (parsed === undefined || (pending !== undefined && hasStray(parsed.messages, pending))) return false
  gate.push(parsed.messages, (result) => {
    const messages = result.changed ? result.messages : parsed.messages
    if (messages.length === 0) {
      emit(undefined)
      return
    }
    noteMessages(messages, pending, onMessage)
    emit(result.changed ? JSON.stringify(parsed.batch ? messages : messages[0]) : data)
  })
  return true
}
