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
