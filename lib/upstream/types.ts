/**
 * The one interface every upstream kind implements, at the message level: a client's messages go
 * out with `send` and come back as messages (`UpstreamAnswer`), a session's own stream opens with
 * `listen` as events, and `end` ends a session. A channel upstream (stdio, legacy HTTP+SSE, the
 * era bridges) does all three with no HTTP in between; a Streamable HTTP upstream maps them to
 * POST, GET and DELETE and reads the answers into messages (`http-answer.ts`). Failures come out
 * as coded gateway errors, once.
 */
import type { DropReason } from '../relay/pending.ts'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { AbortLike } from '../abort.ts'
import type { ChildrenReport } from './stdio-pool.ts'
import type { JsonRpcMessage } from '../jsonrpc.ts'
import type { UpstreamAnswer, UpstreamEvents } from './events.ts'
import type { Caller } from '../upstream-auth/credentials.ts'

/** A name as a virtual server's member knows it: its upstream, and the name there. */
export interface MemberName {
  upstream: string
  name: string
}

export type UpstreamKind = 'streamable-http' | 'stdio' | 'sse' | 'virtual'

/** One HTTP request to a Streamable HTTP server (the gateway's own, and its bridges' to theirs). */
export interface UpstreamHttpRequest {
  method: 'POST' | 'GET' | 'DELETE'
  /** Already filtered: only what may reach the upstream. */
  headers: Record<string, string>
  body?: Buffer | string
  signal?: AbortLike
  /** A stream that may stay idle (the GET stream): no body timeout. */
  longLived?: boolean
  /** Who it is for (inbound auth on): per-user upstream `auth` modes send that user's token. */
  caller?: Caller
  /** Sent without the upstream's `auth` credentials (a probe: any HTTP answer will do). */
  anonymous?: boolean
}

/**
 * A session's own stream, or its end. Addressed as a Streamable HTTP server is (the headers:
 * `Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID` to resume after an upstream event id);
 * a channel reads the session id and nothing else.
 */
export interface UpstreamSessionRequest {
  headers: Record<string, string>
  signal?: AbortLike
  /** Who it is for (inbound auth on), as `UpstreamHttpRequest.caller`. */
  caller?: Caller
}

/** A client's messages for one exchange (one POST body), already filtered and parsed. */
export interface UpstreamSend {
  /** Already filtered: only what may reach the upstream (`Mcp-Session-Id` names its session). */
  headers: Record<string, string>
  /** The messages' bytes, forwarded as they are by upstreams that send bytes. */
  body: Buffer | string
  messages: readonly JsonRpcMessage[]
  /** An `initialize` without a session: the answer may name the upstream's new session. */
  opensSession?: boolean
  signal?: AbortLike
  /** The caller's principal id (auth on): upstream sessions held for stateless clients are theirs. */
  principal?: string
  /** Who it is for (inbound auth on), as `UpstreamHttpRequest.caller`. */
  caller?: Caller
  /** Largest whole (JSON) answer accepted; streams are never buffered. */
  maxBytes: number
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
  /**
   * Sends a client's messages and resolves with the upstream's answer as messages. Rejects with a
   * coded gateway error (an upstream's own 4xx as `UPSTREAM_REFUSED`, a session it forgot as
   * `UPSTREAM_SESSION_GONE`), or with the abort reason.
   */
  send (req: UpstreamSend): Promise<UpstreamAnswer>
  /**
   * Opens the server's own stream of a session (the 2025 GET stream), as events, until the signal
   * aborts or the stream ends. Rejects as `send` does; a server that offers no such stream refuses
   * (`UPSTREAM_REFUSED`, HTTP 405 for a Streamable HTTP one).
   */
  listen (req: UpstreamSessionRequest): Promise<UpstreamEvents>
  /** Ends a session upstream. Rejects as `send` does. */
  end (req: UpstreamSessionRequest): Promise<void>
  /**
   * Counts responses dropped below any exchange (a channel's reply to no request it carries: a
   * stray, or a duplicate after the answer was complete). The endpoint serving it watches.
   */
  watchDrops? (onDrop: (reason: DropReason) => void): void
  /**
   * A virtual server's member behind an exposed tool or prompt name: which upstream it is for,
   * and its name there (undefined for any other upstream, or a name no member has).
   */
  memberOf? (kind: 'tools' | 'prompts', exposed: string): MemberName | undefined
  /** A virtual server's members, each its own upstream (for `/readyz` and metrics). */
  members? (): ReadonlyArray<{ name: string, upstream: Upstream }>
  /** Resolves when the upstream can serve (for `/readyz`); rejects with the reason otherwise. */
  probe (): Promise<void>
  /** Starts what it keeps ready ahead of sessions (a stdio upstream's spare children), once the server is ready. */
  warm? (): void
  /** Its child processes (stdio), for metrics; undefined for upstreams that run none. */
  children? (): ChildrenReport | undefined
  /** Frees everything once the exchanges in flight are over (graceful). */
  close (): Promise<void>
  /** Ends everything at once (shutdown past its deadline). */
  destroy (): Promise<void>
}
