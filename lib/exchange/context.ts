/**
 * What a client adapter hands an exchange (the request, as messages and headers, and which sink it
 * takes), and what an exchange needs from its endpoint.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Abort } from '../abort.ts'
import type { Principal } from '../auth/principal.ts'
import type { Caller } from '../upstream-auth/credentials.ts'
import type { CheckedTimeouts } from '../deadline.ts'
import type { BaseContext } from '../interceptors/apply.ts'
import type { InterceptorChain } from '../interceptors/chain.ts'
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import type { ExchangeObserver } from '../observer.ts'
import type { DropReason } from '../relay/pending.ts'
import type { SessionManager } from '../session/manager.ts'
import type { SessionResolution } from '../session/resolve.ts'
import type { SessionRecord } from '../session/store.ts'
import type { ResumableStreams } from '../streams/resumable.ts'
import type { MemberName, Upstream } from '../upstream/types.ts'
import type { AuditLog } from '../audit/log.ts'
import type { FrameSink, RefusedAnswer } from './answer.ts'
import type { Exchange } from './exchange.ts'

/** A place under the session cap, held from the check until the session opened or failed. */
export interface Place { release: () => void }

export interface ExchangeContext {
  headers: IncomingHttpHeaders
  resolution: SessionResolution
  /** Aborted when the client goes away. */
  signal: Abort
  log: Logger
  /**
   * The WebSocket sink. Without it the answer is for HTTP: a JSON body, or an SSE stream (logged
   * when the endpoint has a stream hub and the request a session, else relayed as it comes).
   */
  frames?: FrameSink
  /** Interceptors for this exchange (the gateway's, then the route's); none when empty. */
  interceptors?: InterceptorChain
  /** The route's `config.mcp`, for interceptors. */
  routeConfig?: Record<string, unknown>
  /** Who is asking, when inbound auth is on: sessions are bound to it. */
  principal?: Principal
}

/** What an exchange uses of its endpoint: the upstream, the sessions, shared watchers. */
export interface ExchangeDeps {
  readonly upstream: Upstream
  readonly sessions: SessionManager
  readonly maxResponseBytes: number
  readonly resumable: ResumableStreams | undefined
  readonly observers: ExchangeObserver[]
  /** The audit log, when on: the exchange records its audited requests there. */
  readonly audit: AuditLog | undefined
  /** A virtual server's member behind an exposed name (undefined elsewhere). */
  readonly memberOf: ((kind: 'tools' | 'prompts', exposed: string) => MemberName | undefined) | undefined
  readonly timeouts: CheckedTimeouts | undefined
  /** The upstream may prompt users to sign in (per-user OAuth): 2026 retries carry the gateway's requestState. */
  readonly consentPrompts: boolean
  /** Tells the observers about a message from the upstream. */
  readonly observeUpstream: (message: JsonRpcMessage, session?: string) => void
  /** Tells the observers about a response dropped (a stray, a duplicate, a cancelled one's). */
  readonly onDrop: (reason: DropReason) => void
  interceptorBase: (ctx: ExchangeContext, session: SessionRecord | undefined) => BaseContext
  cancelUpstream: (session: SessionRecord, ids: JsonRpcId[], log: Logger, reason?: string, caller?: Caller) => void
  /** An exchange of the session is answering the client itself (true), or no longer (false). */
  live: (sessionId: string, exchange: Exchange, answering: boolean) => void
  /** The client cancelled a request of the session: whichever exchange answers it stops owing that. */
  cancelRequest: (sessionId: string, requestId: JsonRpcId) => void
  /** The client's answer when the upstream refused (throws what is not the client's to see). */
  refused: (err: unknown, session: SessionRecord | undefined) => Promise<RefusedAnswer>
}
