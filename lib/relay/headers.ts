/**
 * Which client headers may reach an upstream. An allow-list, not a deny-list: the client's
 * `Authorization`, cookies, hop-by-hop and proxy headers never leave the gateway (MCP security
 * best practices forbid token passthrough); upstream credentials come from configuration.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { HEADER } from '../protocol.ts'

const FORWARDED = [
  'accept',
  'content-type',
  HEADER.protocolVersion,
  HEADER.lastEventId,
  HEADER.method,
  HEADER.name,
  'traceparent',
  'tracestate'
] as const

/** 2026-07-28 mirrors tool parameters into `Mcp-Param-<name>` headers for intermediaries. */
const PARAM_PREFIX = 'mcp-param-'

export const GATEWAY_USER_AGENT = 'fastify-mcp-gateway'

/**
 * With a session, the upstream gets the version negotiated for it whatever the client sent (the
 * client's header has been checked to be a version that exists).
 */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, upstreamSessionId: string | null | undefined, protocolVersion?: string): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': GATEWAY_USER_AGENT }
  for (const name of FORWARDED) {
    const value = client[name]
    if (typeof value === 'string') out[name] = value
  }
  for (const name in client) {
    if (name.startsWith(PARAM_PREFIX)) {
      const value = client[name]
      if (typeof value === 'string') out[name] = value
    }
  }
  if (upstreamSessionId != null) out[HEADER.sessionId] = upstreamSessionId
  if (protocolVersion !== undefined) out[HEADER.protocolVersion] = protocolVersion
  return out
}
