/**
 * One MCP endpoint's exchanges with its upstream, free of any web framework: a POST becomes an
 * `Exchange` (exchange/exchange.ts) whose answer goes to the client's sink (exchange/sinks.ts); a
 * GET opens the server's stream; a DELETE ends a session. Which session a request belongs to is
 * decided first (session/resolve.ts). The client adapters (the Fastify route, the WebSocket
 * connection) turn their wire into messages and deliver the `ClientAnswer` they get back.
 */
import type { AuditLog } from './audit/log.ts'
import { GatewayErrors } from './errors.ts'
import type { JsonRpcId, JsonRpcMessage } from './jsonrpc.ts'
import type { ExchangeObserver } from './observer.ts'
import type { Logger } from './logger.ts'
import { HEADER } from './protocol.ts'
import { upstreamRequestHeaders } from './relay/headers.ts'
import { relayFrames, relaySse } from './relay/sse-relay.ts'
import type { DropReason } from './relay/pending.ts'
import type { SessionEndReason, SessionManager } from './session/manager.ts'
import type { SessionRecord } from './session/store.ts'
import type { ParsedBody } from './session/resolve.ts'
import type { MemberName, Upstream } from './upstream/types.ts'
import { releaseAnswer, type UpstreamEvents } from './upstream/events.ts'
import { refusedReply } from './upstream/http-answer.ts'
import type { StreamHub } from './streams/hub.ts'
import { sessionCaller, type Caller } from './upstream-auth/credentials.ts'
import { ResumableStreams } from './streams/resumable.ts'
import type { CheckedTimeouts } from './deadline.ts'
import { upstreamFilter, type BaseContext, type MessageFilter } from './interceptors/apply.ts'
import { SSE_HEADERS, noAnswer, type ClientAnswer, type MessagesAnswer, type RefusedAnswer } from './exchange/answer.ts'
import type { ExchangeContext, ExchangeDeps, Place } from './exchange/context.ts'
import { Exchange } from './exchange/exchange.ts'

export type { ExchangeContext } from './exchange/context.ts'
export type { ClientAnswer } from './exchange/answer.ts'

export interface ForwarderOptions {
  upstream: Upstream
  sessions: SessionManager
  /**
   * Largest JSON response accepted from the upstream (SSE streams are relayed, never buffered).
   * @default 64 MiB
   */
  maxResponseBytes?: number
  /** Resumable streams: SSE answers of sessions go through this hub's event log. */
  streams?: StreamHub
  /** Watchers of traffic (metrics, tracing); the array may grow after construction. */
  observers?: ExchangeObserver[]
  /** Request timeouts (reset by progress); none without. */
  timeouts?: CheckedTimeouts
  /** The audit log: audited requests are recorded there. */
  audit?: AuditLog
  /** The upstream's `auth` is per-user OAuth: its users may be prompted to sign in. */
  consentPrompts?: boolean
}

export const FORWARDER_DEFAULTS = { maxResponseBytes: 64 * 1024 * 1024 } as const

export class Forwarder implements ExchangeDeps {
  readonly upstream: Upstream
  readonly sessions: SessionManager
  readonly maxResponseBytes: number
  readonly resumable: ResumableStreams | undefined
  readonly observers: ExchangeObserver[]
  readonly audit: AuditLog | undefined
  readonly timeouts: CheckedTimeouts | undefined
  readonly consentPrompts: boolean
  readonly observeUpstream: (message: JsonRpcMessage, session?: string) => void
  readonly onDrop: (reason: DropReason) => void
  /** A virtual server's member behind an exposed name, for interceptors (undefined elsewhere). */
  readonly memberOf: ((kind: 'tools' | 'prompts', exposed: string) => MemberName | undefined) | undefined

  constructor (options: ForwarderOptions) {
    this.upstream = options.upstream
    this.sessions = options.sessions
    this.maxResponseBytes = options.maxResponseBytes ?? FORWARDER_DEFAULTS.maxResponseBytes
    this.timeouts = options.timeouts
    this.audit = options.audit
    this.consentPrompts = options.consentPrompts === true
    const observers = this.observers = options.observers ?? []
    const name = options.upstream.name
    this.observeUpstream = (message, session) => {
      for (const observer of observers) observer.message?.('upstream_to_client', message, name, session)
    }
    this.onDrop = (reason) => {
      for (const observer of observers) observer.dropped?.(name, reason)
    }
    options.upstream.watchDrops?.(this.onDrop)
    this.memberOf = options.upstream.memberOf?.bind(options.upstream)
    this.resumable = options.streams === undefined
      ? undefined
      : new ResumableStreams(options.streams, options.upstream, async (err, session) => await this.refused(err, session), async (session) => { await this.sessions.end(session.id, 'upstream-gone') }, this.observeUpstream)
  }

  /** A client's POST (or WebSocket message): its exchange, and the answer for the adapter to deliver. */
  async post (ctx: ExchangeContext, body: ParsedBody): Promise<ClientAnswer> {
    if (ctx.resolution.kind === 'initialize') {
      const place = await this.sessions.reserve()
      if (place === undefined) throw new GatewayErrors.TOO_MANY_SESSIONS(this.sessions.limits.maxSessions)
      try {
        return await this.counted(ctx, body, place)
      } finally {
        place.release()
      }
    }
    return await this.counted(ctx, body, undefined)
  }

  private async counted (ctx: ExchangeContext, body: ParsedBody, place: Place | undefined): Promise<ClientAnswer> {
    const exchange = new Exchange(this, ctx, body, place)
    const hub = this.resumable?.hub
    // A WebSocket's answers are its connection's to wait for at shutdown (it drains on its own).
    if (hub === undefined || ctx.frames !== undefined) return await exchange.run()
    // Shutdown waits for this too: its answer may turn into a stream after the wait began.
    return await hub.track(exchange.run())
  }

  /** Exchanges answering their clients themselves (not through the log), by session. */
  private readonly answering = new Map<string, Set<Exchange>>()

  live (sessionId: string, exchange: Exchange, answering: boolean): void {
    const set = this.answering.get(sessionId)
    if (answering) {
      if (set === undefined) this.answering.set(sessionId, new Set([exchange]))
      else set.add(exchange)
      return
    }
    if (set === undefined || !set.delete(exchange)) return
    if (set.size === 0) this.answering.delete(sessionId)
  }

  cancelRequest (sessionId: string, requestId: JsonRpcId): void {
    this.resumable?.hub.cancelRequest(sessionId, requestId)
    const set = this.answering.get(sessionId)
    if (set !== undefined) for (const exchange of [...set]) exchange.cancelled(requestId)
  }

  interceptorBase (ctx: ExchangeContext, session: SessionRecord | undefined): BaseContext {
    return { session, principal: ctx.principal, upstream: this.upstream.name, memberOf: this.memberOf, headers: ctx.headers, endpoint: this.upstream, config: ctx.routeConfig, log: ctx.log }
  }

  /** The exchange's interceptors for messages from the upstream, if any may act on them. */
  private upstreamFilter (ctx: ExchangeContext, session: SessionRecord | undefined): MessageFilter | undefined {
    const chain = ctx.interceptors
    if (chain === undefined || !chain.watches('upstream_to_client')) return undefined
    return upstreamFilter(chain, this.interceptorBase(ctx, session), undefined)
  }

  /**
   * What the client gets when the upstream refused: a session it forgot ends ours (the client
   * re-initialises); its own 4xx goes back as it is; anything else is thrown as it came.
   */
  async refused (err: unknown, session: SessionRecord | undefined): Promise<RefusedAnswer> {
    const code = (err as { code?: string }).code
    if (code === 'MCP_GW_UPSTREAM_SESSION_GONE') {
      if (session !== undefined) await this.sessions.end(session.id, 'upstream-gone')
      throw new GatewayErrors.SESSION_NOT_FOUND()
    }
    const reply = refusedReply(err)
    if (reply !== undefined) return { kind: 'refused', reply }
    throw err
  }

  /** Opens the server-to-client stream (GET), resuming from `Last-Event-ID` when the client asks. */
  async get (ctx: ExchangeContext): Promise<ClientAnswer> {
    const session = ctx.resolution.kind === 'session' ? ctx.resolution.session : undefined
    if (session !== undefined && this.resumable !== undefined && ctx.frames === undefined) {
      const lastEventId = ctx.headers[HEADER.lastEventId]
      return typeof lastEventId === 'string'
        ? await this.resumable.resume(session, lastEventId, ctx.headers, ctx.log, this.upstreamFilter(ctx, session), ctx.principal)
        : await this.resumable.get(session, ctx.headers, ctx.log, this.upstreamFilter(ctx, session), ctx.principal)
    }
    let source: UpstreamEvents
    try {
      source = await this.upstream.listen({ headers: upstreamRequestHeaders(ctx.headers, session?.upstreamSessionId, session?.protocolVersion), signal: ctx.signal, caller: ctx.principal })
    } catch (err) {
      return await this.refused(err, session)
    }
    const relay = { source, filter: this.upstreamFilter(ctx, session), log: ctx.log, unanswered: () => ({ code: 0, message: '' }) }
    if (ctx.frames !== undefined) {
      await relayFrames(Object.assign({}, relay, { send: ctx.frames.send, signal: ctx.signal }))
      return { kind: 'framed' }
    }
    return { kind: 'sse', headers: Object.assign({}, SSE_HEADERS), body: relaySse(relay), live: true }
  }

  /** Ends a session: upstream first (best effort), then in the store, whatever the upstream said. */
  async delete (ctx: ExchangeContext): Promise<MessagesAnswer | RefusedAnswer> {
    if (ctx.resolution.kind !== 'session') {
      try {
        await this.upstream.end({ headers: upstreamRequestHeaders(ctx.headers, null), signal: ctx.signal, caller: ctx.principal })
      } catch (err) {
        return await this.refused(err, undefined)
      }
      return noAnswer()
    }
    const session = ctx.resolution.session
    await this.endUpstream(session, ctx.log)
    await this.sessions.end(session.id, 'deleted')
    ctx.log.info({ sessionId: session.id, upstream: this.upstream.name }, 'session deleted')
    return noAnswer()
  }

  /** Frees what this upstream's exchanges hold for a session that ended (any reason). */
  async released (record: SessionRecord, reason: SessionEndReason, log: Logger): Promise<void> {
    if (record.upstream !== this.upstream.name) return
    await this.resumable?.hub.endSession(record.id)
    if (reason === 'expired') await this.endUpstream(record, log)
  }

  /** Tells the upstream a session is over; failures are logged, never thrown. */
  async endUpstream (session: SessionRecord, log: Logger): Promise<void> {
    if (session.upstreamSessionId === null) return
    try {
      await this.upstream.end({ headers: { [HEADER.sessionId]: session.upstreamSessionId, [HEADER.protocolVersion]: session.protocolVersion }, caller: sessionCaller(session) })
    } catch (err) {
      // An upstream that answered (it forgot the session, it refuses DELETE) has nothing to end.
      const failed = err as { upstreamStatus?: number, code?: string }
      if (failed.upstreamStatus !== undefined || failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE') return
      log.warn({ sessionId: session.id, upstream: this.upstream.name, err }, 'upstream session delete failed')
    }
  }

  /** Tells the upstream its requests for a departed (or timed-out) client are cancelled. */
  cancelUpstream (session: SessionRecord, ids: JsonRpcId[], log: Logger, reason = 'Client disconnected', caller: Caller | undefined = sessionCaller(session)): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      [HEADER.protocolVersion]: session.protocolVersion
    }
    if (session.upstreamSessionId !== null) headers[HEADER.sessionId] = session.upstreamSessionId
    for (const requestId of ids) {
      const notification: JsonRpcMessage = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } }
      // Per-user upstreams refuse a request with no caller: the cancellation would be lost.
      this.upstream.send({ headers, body: JSON.stringify(notification), messages: [notification], maxBytes: this.maxResponseBytes, caller })
        .then(releaseAnswer)
        .catch((err: unknown) => log.debug({ sessionId: session.id, err }, 'upstream cancel failed'))
      log.debug({ sessionId: session.id, requestId }, 'cancelled upstream request for a departed client')
    }
  }
}
