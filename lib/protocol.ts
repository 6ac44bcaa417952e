/** MCP constants for the Streamable HTTP transport, across both protocol eras. */

import type { JsonRpcMessage } from './jsonrpc.ts'

/** Header names, lower-cased as Node presents them. */
export const HEADER = {
  sessionId: 'mcp-session-id',
  protocolVersion: 'mcp-protocol-version',
  lastEventId: 'last-event-id',
  method: 'mcp-method',
  name: 'mcp-name'
} as const

export const PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'] as const
export type ProtocolVersion = typeof PROTOCOL_VERSIONS[number]

/** The first revision without protocol sessions (stateless requests, `Mcp-Method` headers). */
export const STATELESS_VERSION = '2026-07-28'

/** What a 2025-era server assumes when a request carries no `MCP-Protocol-Version` header. */
export const DEFAULT_NEGOTIATED_VERSION = '2025-03-26'

/** `_meta` key carrying the protocol version on every 2026-07-28 request. */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion'

/** Versions are dates, so string order is time order; unknown future versions count as stateless. */
export function isStatelessVersion (version: string | undefined): boolean {
  return version !== undefined && version >= STATELESS_VERSION
}

/** JSON-RPC batches existed in 2025-03-26 only (2024-11-05 allowed them too); 2025-06-18 removed them. */
export function supportsBatches (version: string): boolean {
  return version <= '2025-03-26'
}

/**
 * A sessionless request belongs to the 2026 era when it says so in a header or in its `_meta`;
 * anything else without a session is a 2025-era client that forgot its session.
 */
export function isStatelessRequest (headers: Record<string, string | string[] | undefined>, messages: readonly JsonRpcMessage[]): boolean {
  if (headers[HEADER.method] !== undefined) return true
  const version = headers[HEADER.protocolVersion]
  if (typeof version === 'string' && isStatelessVersion(version)) return true
  const first = messages[0]
  if (first !== undefined && 'method' in first) {
    const meta = first.params?._meta as Record<string, unknown> | undefined
    const metaVersion = meta?.[META_PROTOCOL_VERSION]
    if (typeof metaVersion === 'string' && isStatelessVersion(metaVersion)) return true
  }
  return false
}

/** Methods whose `Mcp-Name` header mirrors `params.name` (or `params.uri`). */
const NAMED = new Map([['tools/call', 'name'], ['prompts/get', 'name'], ['resources/read', 'uri']])

/** A header value in the spec's Base64 sentinel form (`=?base64?...?=`), decoded. */
export function decodeHeaderValue (value: string): string {
  if (value.startsWith('=?base64?') && value.endsWith('?=') && value.length >= 11) {
    return Buffer.from(value.slice(9, -2), 'base64').toString('utf8')
  }
  return value
}

/**
 * 2026-07-28 mirrors body fields into headers so intermediaries can route without parsing; a
 * gateway that reads the body must check they agree (else a balancer routing on the header and
 * a server acting on the body disagree). Resolves the mismatch, or undefined when all agree.
 */
export function headerMismatch (headers: Record<string, string | string[] | undefined>, message: JsonRpcMessage): string | undefined {
  if (!('method' in message)) return undefined
  const method = headers[HEADER.method]
  if (typeof method !== 'string') return 'the Mcp-Method header is required'
  if (method !== message.method) return `Mcp-Method header value '${method}' does not match body value '${message.method}'`
  const version = headers[HEADER.protocolVersion]
  const meta = message.params?._meta as Record<string, unknown> | undefined
  const metaVersion = meta?.[META_PROTOCOL_VERSION]
  if (typeof version !== 'string') return 'the MCP-Protocol-Version header is required'
  if (metaVersion !== undefined && metaVersion !== version) return `MCP-Protocol-Version header value '${version}' does not match body value '${String(metaVersion)}'`
  const field = NAMED.get(message.method)
  if (field !== undefined) {
    const name = headers[HEADER.name]
    const body = message.params?.[field]
    if (typeof name !== 'string') return 'the Mcp-Name header is required'
    if (decodeHeaderValue(name) !== body) return `Mcp-Name header value '${name}' does not match body value '${String(body)}'`
  }
  return undefined
}
