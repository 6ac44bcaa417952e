/**
 * The one interface every upstream kind implements. The gateway's exchange is written in
 * Streamable HTTP terms (POST / GET / DELETE, JSON or SSE answers, `Mcp-Session-Id`), because that
 * is what it speaks to clients: an HTTP upstream passes requests through, and a stdio or legacy
 * HTTP+SSE upstream answers them itself, as a small in-process Streamable HTTP server over its
 * own transport.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { AbortLike } from '../abort.ts'
import type { JsonRpcMessage } from '../jsonrpc.ts'

export type UpstreamKind = 'streamable-http' | 'stdio' | 'sse'

export interface UpstreamHttpRequest {
  method: 'POST' | 'GET' | 'DELETE'
  /** Already filtered: only what may reach the upstream. */
  headers: Record<string, string>
  body?: Buffer | string
  /**
   * The body's messages, already parsed by the gateway: upstreams that need them (stdio, legacy)
   * skip a second parse. Absent, they parse `body`.
   */
  messages?: readonly JsonRpcMessage[]
  signal?: AbortLike
  /** The caller's principal id (auth on): upstream sessions held for stateless clients are theirs. */
  principal?: string
  /** A stream that may stay idle (the GET stream): no body timeout. */
  longLived?: boolean
}

export interface UpstreamHttpResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Readable
}

export interface Upstream {
  /** Name used in logs, metrics and error messages. */
  readonly name: string
  readonly kind: UpstreamKind
  /** The protocol era the upstream speaks, when known (stdio and legacy SSE: 2025). */
  readonly era?: '2025' | '2026' | undefined
  /** Sends one request. Rejects with a gateway error, or with the abort reason. */
  request (req: UpstreamHttpRequest): Promise<UpstreamHttpResponse>
  /** Resolves when the upstream can serve (for `/readyz`); rejects with the reason otherwise. */
  probe (): Promise<void>
  /** Frees everything once the exchanges in flight are over (graceful). */
  close (): Promise<void>
  /** Ends everything at once (shutdown past its deadline). */
  destroy (): Promise<void>
}
