/**
 * JSON-RPC 2.0 types, guards and a parser with the standard error codes, as MCP uses them
 * (ids are strings or numbers, never null, on requests).
 */
import sjson from 'secure-json-parse'

export type JsonRpcId = string | number

export interface JsonRpcRequest {
  jsonrpc: '2.0'
  id: JsonRpcId
  method: string
  params?: Record<string, unknown>
}

export interface JsonRpcNotification {
  jsonrpc: '2.0'
  method: string
  params?: Record<string, unknown>
}

export interface JsonRpcResult {
  jsonrpc: '2.0'
  id: JsonRpcId
  result: Record<string, unknown>
}

export interface JsonRpcErrorObject {
  code: number
  message: string
  data?: unknown
}

export interface JsonRpcError {
  jsonrpc: '2.0'
  /** null only when the request's id could not be read (parse errors, invalid requests). */
  id: JsonRpcId | null
  error: JsonRpcErrorObject
}

export type JsonRpcResponse = JsonRpcResult | JsonRpcError
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse

export type MessageKind = 'request' | 'notification' | 'response' | 'error'

export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const METHOD_NOT_FOUND = -32601
export const INVALID_PARAMS = -32602
export const INTERNAL_ERROR = -32603

/**
 * Longest string id accepted. JSON-RPC sets no limit; ids are echoed, logged and kept while a
 * request is pending, and no real client needs more than a UUID or two.
 */
export const MAX_ID_LENGTH = 1024

/**
 * Longest tool name a client may call (`tools/call` `params.name`), in UTF-16 code units. MCP
 * advises names of at most 128 characters; the cap leaves room and bounds what interceptors,
 * rules and authorization match, log and keep per call. A longer name is refused with -32602
 * where the client's body is parsed.
 */
export const MAX_TOOL_NAME_LENGTH = 1024

function isId (value: unknown): value is JsonRpcId {
  return (typeof value === 'string' && value.length <= MAX_ID_LENGTH) || (typeof value === 'number' && Number.isFinite(value))
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * The kind of a JSON-RPC message, or undefined when the value is not a valid one.
 * One pass over the few fields that decide it: this runs on every message in both directions.
 */
export function messageKind (value: unknown): MessageKind | undefined {
  if (!isObject(value) || value.jsonrpc !== '2.0') return undefined
  const params = value.params
  if (typeof value.method === 'string') {
    if (params !== undefined && !isObject(params)) return undefined
    if (!('id' in value)) return 'notification'
    return isId(value.id) ? 'request' : undefined
  }
  if ('result' in value) {
    return isId(value.id) && !('error' in value) && isObject(value.result) ? 'response' : undefined
  }
  if ('error' in value) {
    const error = value.error
    if (!isObject(error) || !Number.isInteger(error.code) || typeof error.message !== 'string') return undefined
    return value.id === null || isId(value.id) ? 'error' : undefined
  }
  return undefined
}

export function isRequest (message: JsonRpcMessage): message is JsonRpcRequest {
  return 'method' in message && 'id' in message
}

export function isNotification (message: JsonRpcMessage): message is JsonRpcNotification {
  return 'method' in message && !('id' in message)
}

export function isResponse (message: JsonRpcMessage): message is JsonRpcResponse {
  return !('method' in message)
}

export type ParseResult =
  | { ok: true, messages: JsonRpcMessage[], batch: boolean }
  | { ok: false, code: number, message: string }

/** Checks an already parsed JSON value: one message or a non-empty batch of them. */
export function toMessages (value: unknown): ParseResult {
  if (Array.isArray(value)) {
    if (value.length === 0) return { ok: false, code: INVALID_REQUEST, message: 'Invalid Request: empty batch' }
    for (let i = 0; i < value.length; i++) {
      if (messageKind(value[i]) === undefined) {
        return { ok: false, code: INVALID_REQUEST, message: `Invalid Request: batch item ${i} is not a JSON-RPC 2.0 message` }
      }
    }
    return { ok: true, messages: value as JsonRpcMessage[], batch: true }
  }
  if (messageKind(value) === undefined) {
    return { ok: false, code: INVALID_REQUEST, message: 'Invalid Request: not a JSON-RPC 2.0 message' }
  }
  return { ok: true, messages: [value as JsonRpcMessage], batch: false }
}

/**
 * What to do with `__proto__` keys and with `constructor` keys holding a `prototype`, in client
 * input: the same values and meaning as Fastify's `onProtoPoisoning` / `onConstructorPoisoning`.
 * `error` refuses the message, `remove` deletes the key, `ignore` keeps it.
 */
export type PoisoningAction = 'error' | 'remove' | 'ignore'

export interface PoisoningPolicy {
  /** For `__proto__` keys (Fastify's `onProtoPoisoning`). */
  protoAction: PoisoningAction
  /** For `constructor` keys holding a `prototype` (Fastify's `onConstructorPoisoning`). */
  constructorAction: PoisoningAction
}

/** Fastify's defaults: both refused. */
export const POISONING_DEFAULTS: Readonly<PoisoningPolicy> = { protoAction: 'error', constructorAction: 'error' }

export const POISONED_MESSAGE = 'Invalid Request: object contains forbidden prototype property'

/**
 * Parses JSON text into JSON-RPC messages, with -32700 for bad JSON and -32600 for a bad shape
 * or a forbidden prototype key (the text is valid JSON; its content is what is refused).
 * `poisoning` absent: no key is looked for (text the gateway wrote or already checked).
 * `removed` is set when the policy deleted keys, so the caller re-encodes the messages instead of
 * forwarding the original text.
 */
export function parseMessages (text: string, poisoning?: PoisoningPolicy): ParseResult & { removed?: true } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { ok: false, code: PARSE_ERROR, message: `Parse error: ${(err as Error).message}` }
  }
  let removed = false
  if (poisoning !== undefined && typeof value === 'object' && value !== null && mayBePoisoned(text, poisoning)) {
    // secure-json-parse's scan (what Fastify runs): `safe` only reports (null) without acting,
    // so the walk that acts, and a re-encoding by the caller, happen only when a key was found.
    if (sjson.scan(value as Record<string, unknown>, { ...poisoning, safe: true }) === null) {
      try {
        sjson.scan(value as Record<string, unknown>, { ...poisoning })
      } catch {
        return { ok: false, code: INVALID_REQUEST, message: POISONED_MESSAGE }
      }
      removed = true
    }
  }
  const parsed = toMessages(value)
  return removed && parsed.ok ? { ...parsed, removed: true } : parsed
}

/**
 * Whether the text may hold a key the policy acts on, so the parsed value must be walked. A
 * cheap, conservative look at the text: the key spelled out, or any `\u` escape (a key may be
 * spelled with escapes; some clients, Python's `json.dumps`, escape every non-ASCII character).
 */
function mayBePoisoned (text: string, poisoning: PoisoningPolicy): boolean {
  const proto = poisoning.protoAction !== 'ignore'
  const ctor = poisoning.constructorAction !== 'ignore'
  if (!proto && !ctor) return false
  return (proto && text.includes('__proto__')) || (ctor && text.includes('constructor')) || text.includes('\\u')
}

/**
 * Whether any `tools/call` request among messages names a tool longer than
 * `MAX_TOOL_NAME_LENGTH`. Checked on client input before anything matches globs on the name.
 */
export function hasOversizedToolName (messages: readonly JsonRpcMessage[]): boolean {
  for (const message of messages) {
    if ('method' in message && message.method === 'tools/call') {
      const name = message.params?.name
      if (typeof name === 'string' && name.length > MAX_TOOL_NAME_LENGTH) return true
    }
  }
  return false
}

export function errorResponse (id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcError {
  const error: JsonRpcErrorObject = { code, message }
  if (data !== undefined) error.data = data
  return { jsonrpc: '2.0', id, error }
}

/** Deepest nesting of arrays and objects accepted in a message. */
export const MAX_DEPTH = 64

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, found in one pass over the text
 * before it is parsed (so nothing later, a re-encoding included, can recurse too deep). Brackets
 * inside strings do not count.
 */
export function nestsDeeperThan (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) {
      inString = true
    } else if (c === 91 || c === 123) {
      if (++depth > limit) return true
    } else if (c === 93 || c === 125) {
      depth--
    }
  }
  return false
}
