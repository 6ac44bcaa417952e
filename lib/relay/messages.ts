import { messageKind, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts'

/**
 * Checks one SSE event's data from an upstream: JSON, and a JSON-RPC message (or a batch of them
 * for 2025-03-26). Answers remove their ids from `pending`; `onMessage` sees each message.
 * Returns false for data a client must not get.
 */
export function acceptEventData (data: string, pending: Set<JsonRpcId> | undefined, onMessage: ((message: JsonRpcMessage) => void) | undefined): boolean {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return false
  }
  const observe = (item: unknown): boolean => {
    const kind = messageKind(item)
    if (kind === undefined) return false
    if ((kind === 'response' || kind === 'error') && pending !== undefined) pending.delete((item as { id: JsonRpcId }).id)
    onMessage?.(item as JsonRpcMessage)
    return true
  }
  return Array.isArray(value) ? value.length > 0 && value.every(observe) : observe(value)
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
export function noteMessages (messages: readonly JsonRpcMessage[], pending: Set<JsonRpcId> | undefined, onMessage: ((message: JsonRpcMessage) => void) | undefined): void {
  for (const message of messages) {
    const kind = messageKind(message)
    if ((kind === 'response' || kind === 'error') && pending !== undefined) pending.delete((message as { id: JsonRpcId }).id)
    onMessage?.(message)
  }
}
