/**
 * Which session a client request belongs to, decided before anything is sent upstream: the
 * session its `Mcp-Session-Id` names (if this endpoint and principal own it), a sessionless
 * `initialize` that may open one, or a 2026-07-28 stateless request. Also what a POST body is.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { GatewayErrors } from '../errors.ts'
import { isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import { HEADER, PROTOCOL_VERSIONS, STATELESS_VERSION, headerMismatch, isStatelessRequest, isStatelessVersion, supportsBatches } from '../protocol.ts'
import type { SessionManager } from './manager.ts'
import type { SessionRecord } from './store.ts'

/** A POST body, parsed once: the original bytes (forwarded as they are) and the messages. */
export interface ParsedBody {
  raw: Buffer
  messages: JsonRpcMessage[]
  batch: boolean
}

/** A body whose messages were changed (by interceptors, a route hook, the gateway): encoded anew. */
export function reencoded (messages: JsonRpcMessage[], batch: boolean): ParsedBody {
  return { messages, batch, raw: Buffer.from(JSON.stringify(batch ? messages : messages[0])) }
}

export type SessionResolution =
  | { kind: 'session', session: SessionRecord }
  /** A sessionless `initialize`: the exchange opens a gateway session if the upstream agrees. */
  | { kind: 'initialize' }
  /** A 2026-07-28 (or later) request: no session, forwarded as it is. */
  | { kind: 'stateless' }

export function findInitialize (messages: readonly JsonRpcMessage[]): JsonRpcRequest | undefined {
  for (const message of messages) {
    if (isRequest(message) && message.method === 'initialize') return message
  }
  return undefined
}

/** What a POST body does, in one word: its method, "batch", or "response" (a client's answer). */
export function bodyMethod (body: ParsedBody): string {
  const first = body.messages[0] as JsonRpcMessage
  if (body.batch) return 'batch'
  return 'method' in first ? first.method : 'response'
}

/** Decides which session a request belongs to, before anything is sent upstream. */
export interface ResolveOptions {
  /** The endpoint's upstream: a session opened on another endpoint is unknown here. */
  upstream?: string
  /** The caller's principal id (auth on): another principal's session is unknown to it. */
  principal?: string
  /** Sees the session once found. */
  onSession?: (session: SessionRecord) => void
}

export async function resolveSession (sessions: SessionManager, headers: IncomingHttpHeaders, body: ParsedBody | undefined, options: ResolveOptions = {}): Promise<SessionResolution> {
  const messages = body?.messages ?? []
  const sessionId = headers[HEADER.sessionId]
  if (sessionId !== undefined) {
    const session = typeof sessionId === 'string' ? await sessions.find(sessionId) : undefined
    // A session belongs to the endpoint and the principal that opened it: to anyone else it
    // does not exist (a 404 tells a hijacker nothing a guess would not).
    if (session === undefined ||
      (options.upstream !== undefined && session.upstream !== options.upstream) ||
      session.principal !== options.principal) throw new GatewayErrors.SESSION_NOT_FOUND()
    options.onSession?.(session)
    const version = headers[HEADER.protocolVersion]
    if (version !== undefined && (typeof version !== 'string' || !(PROTOCOL_VERSIONS as readonly string[]).includes(version) || isStatelessVersion(version))) {
      // The spec: an invalid or unsupported MCP-Protocol-Version gets 400 (a 2026 version has no sessions).
      throw new GatewayErrors.BAD_PROTOCOL_VERSION(JSON.stringify(version))
    }
    if (findInitialize(messages) !== undefined) throw new GatewayErrors.ALREADY_INITIALIZED()
    if (body?.batch === true && !supportsBatches(session.protocolVersion)) {
      throw new GatewayErrors.BATCH_NOT_SUPPORTED(session.protocolVersion)
    }
    return { kind: 'session', session }
  }
  if (findInitialize(messages) !== undefined) {
    if (body?.batch === true) throw new GatewayErrors.INVALID_REQUEST('Invalid Request: initialize must be sent on its own, not in a batch')
    // The session cap is checked by the exchange, which holds the place until the session opens.
    return { kind: 'initialize' }
  }
  if (isStatelessRequest(headers, messages)) {
    if (body?.batch === true) throw new GatewayErrors.BATCH_NOT_SUPPORTED(STATELESS_VERSION)
    const first = messages[0]
    const mismatch = first === undefined ? undefined : headerMismatch(headers, first)
    if (mismatch !== undefined) throw new GatewayErrors.HEADER_MISMATCH(mismatch)
    return { kind: 'stateless' }
  }
  throw new GatewayErrors.SESSION_REQUIRED()
}
