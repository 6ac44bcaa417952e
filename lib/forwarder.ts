/**
 * The exchange between one client request and one upstream, free of any web framework: what is
 * sent upstream, and which sink the answer goes to (JSON body, logged or unlogged SSE, WebSocket
 * frames). Which session a request belongs to is decided first (session/resolve.ts). The Fastify
 * proxy plugin and the WebSocket connection are thin adapters over this.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { GatewayErrors, toJsonRpcError } from './errors.ts'
import { errorResponse, isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from './jsonrpc.ts'
import type { Abort } from './abort.ts'
import { methodLabel, type ExchangeObserver, type ExchangeTrace } from './observer.ts'
import type { Logger } from './logger.ts'
import { DEFAULT_NEGOTIATED_VERSION, HEADER } from './protocol.ts'
import { jsonAnswer } from './relay/json-answer.ts'
import { upstreamRequestHeaders } from './relay/headers.ts'
import { relayFrames, relaySse } from './relay/sse-relay.ts'
import { PendingRequests, type DropReason } from './relay/pending.ts'
import type { SessionEndReason, SessionManager } from './session/manager.ts'
import type { SessionRecord } from './session/store.ts'
import { bodyMethod, findInitialize, type ParsedBody, type SessionResolution } from './session/resolve.ts'
import type { Upstream } from './upstream/types.ts'
import { releaseAnswer, type UpstreamAnswer, type UpstreamEvents } from './upstream/events.ts'
import { refusedReply } from './upstream/http-answer.ts'
import type { StreamHub } from './streams/hub.ts'
import { ResumableStreams, SSE_HEADERS, type OpenStream } from './streams/resumable.ts'
import type { InterceptorChain } from './interceptors/chain.ts'
import { Deadline, timeoutFor, type CheckedTimeouts } from './deadline.ts'
import type { Principal } from './auth/principal.ts'
import { interceptClient, requestsById, upstreamFilter, type BaseContext, type MessageFilter } from './interceptors/apply.ts'

/** A place under the session cap, held from the check until the session opened or failed. */
type Place = { release: () => void }

export interface ExchangeContext {
  headers: IncomingHttpHeaders
  resolution: SessionResolution
  /** Aborted when the client goes away. */
  signal: Abort
  log: Logger
  /**
   * Takes the response over for a logged SSE stream: sends status and headers, returns the sink.
   * Without it (or without a stream hub) SSE answers are relayed without the log.
   */
  openStream?: OpenStream
  /**
   * Called when the GET stream starts flowing to the client: flush headers then, so the client
   * knows its stream is open before the first event, which may be hours away. POST streams skip
   * it: their headers leave with the first event, saving a write per call.
   */
  onStreamStart?: () => void
  /**
   * The WebSocket sink: each message of a streamed answer, and of the server's stream (GET), as
   * one text as it comes, instead of an SSE body. With it, `post` and `get` resolve once the stream
   * is over, with no body of their own.
   */
  sendFrame?: (text: string) => void
  /**
   * Called once an `initialize` opened a gateway session, before any of its answer reaches the
   * client: a WebSocket connection holds its session from then on, since the client may go on as
   * soon as it reads the answer, while the upstream's stream is still open.
   */
  onSessionOpened?: (session: SessionRecord) => void
  /** Interceptors for this exchange (the gateway's, then the route's); none when empty. */
  interceptors?: InterceptorChain
  /** The route's `config.mcp`, for interceptors. */
  routeConfig?: Record<string, unknown>
  /** Who is asking, when inbound auth is on: sessions are bound to it. */
  principal?: Principal
}

export interface OutboundResponse {
  status: number
  headers: Record<string, string>
  /** null: no body; Buffer: a whole JSON body; Readable: an SSE stream. */
  body: Buffer | Readable | null
}

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
}

export const FORWARDER_DEFAULTS = { maxResponseBytes: 64 * 1024 * 1024 } as const

const JSON_HEADERS = { 'content-type': 'application/json' }

/** How a failed exchange is counted: the upstream's HTTP status when it gave one, else the error's code. */
function outcomeOf (err: unknown): number | string {
  const failed = err as { upstreamStatus?: number, code?: string }
  if (failed.upstreamStatus !== undefined) return failed.upstreamStatus
  // The same failures from upstreams without HTTP (channels) count as an HTTP upstream's would.
  if (failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE') return 404
  if (failed.code === 'MCP_GW_UPSTREAM_NEEDS_SESSION') return 400
  return failed.code ?? 'error'
}

export class Forwarder {
  readonly upstream: Upstream
  private readonly sessions: SessionManager
  private readonly maxResponseBytes: number
  private readonly resumable: ResumableStreams | undefined
  private readonly observers: ExchangeObserver[]
  private readonly timeouts: CheckedTimeouts | undefined
  /** Tells the observers about a message from the upstream (undefined-free: checks the list). */
  private readonly observeUpstream: (message: JsonRpcMessage) => void
  /** Tells the observers about a response dropped (a stray, a duplicate, a cancelled one's). */
  private readonly onDrop: (reason: DropReason) => void

  constructor (options: ForwarderOptions) {
    this.upstream = options.upstream
    this.sessions = options.sessions
    this.maxResponseBytes = options.maxResponseBytes ?? FORWARDER_DEFAULTS.maxResponseBytes
    this.timeouts = options.timeouts
    const observers = this.observers = options.observers ?? []
    const name = options.upstream.name
    this.observeUpstream = (message) => {
      for (const observer of observers) observer.message?.('upstream_to_client', message, name)
    }
    this.onDrop = (reason) => {
      for (const observer of observers) observer.dropped?.(name, reason)
    }
    this.resumable = options.streams === undefined
      ? undefined
      : new ResumableStreams(options.streams, options.upstream, async (err, session) => await this.refused(err, session), async (session) => { await this.sessions.end(session.id, 'upstream-gone') }, this.observeUpstream)
  }

  /** Resolves undefined when the response was taken over as a logged stream (`ctx.openStream`). */
  async post (ctx: ExchangeContext, original: ParsedBody): Promise<OutboundResponse | undefined> {
    if (ctx.resolution.kind === 'initialize') {
      const place = await this.sessions.reserve()
      if (place === undefined) throw new GatewayErrors.TOO_MANY_SESSIONS(this.sessions.limits.maxSessions)
      try {
        return await this.counted(ctx, original, place)
      } finally {
        place.release()
      }
    }
    return await this.counted(ctx, original, undefined)
  }

  private async counted (ctx: ExchangeContext, original: ParsedBody, place: Place | undefined): Promise<OutboundResponse | undefined> {
    const hub = this.resumable?.hub
    // A WebSocket's answers are its connection's to wait for at shutdown (it drains on its own).
    if (hub === undefined || ctx.sendFrame !== undefined) return await this.exchange(ctx, original, place)
    // Shutdown waits for this too: its answer may turn into a stream after the wait began.
    return await hub.track(this.exchange(ctx, original, place))
  }

  private async exchange (ctx: ExchangeContext, original: ParsedBody, place: Place | undefined): Promise<OutboundResponse | undefined> {
    const session = ctx.resolution.kind === 'session' ? ctx.resolution.session : undefined
    let body = original
    let local: JsonRpcMessage[] = []
    const chain = ctx.interceptors
    if (chain !== undefined && chain.watches('client_to_upstream')) {
      // The client's own messages: a delay on them is cancelled when the client leaves. (Upstream
      // messages of a logged stream must not be: they are logged for the client to resume.)
      const intercepted = interceptClient(chain, body.messages, { ...this.interceptorBase(ctx, session), signal: ctx.signal })
      const out = intercepted instanceof Promise ? await intercepted : intercepted
      local = out.answers
      if (out.forward.length === 0) {
        // Nothing left for the upstream: blocked or mocked requests are answered here.
        if (local.length === 0) return { status: 202, headers: {}, body: null }
        return { status: 200, headers: { ...JSON_HEADERS }, body: Buffer.from(JSON.stringify(body.batch ? local : local[0])) }
      }
      if (out.changed) {
        const messages = out.forward
        body = { messages, batch: body.batch, raw: Buffer.from(JSON.stringify(body.batch ? messages : messages[0])) }
      }
    }
    const pending = new PendingRequests(undefined, this.onDrop)
    for (const message of body.messages) {
      if (isRequest(message)) {
        pending.add(message.id)
      } else if (session !== undefined && 'method' in message && message.method === 'notifications/cancelled') {
        const requestId = message.params?.requestId
        if (typeof requestId === 'string' || typeof requestId === 'number') this.resumable?.hub.cancelRequest(session.id, requestId)
      }
    }

    // The upstream's answer as it flows, once there: a deadline that passes ends it with its error.
    let source: UpstreamEvents | undefined
    const deadline = pending.size === 0 || this.timeouts === undefined
      ? undefined
      : this.deadline(body, (expired) => {
        ctx.log.warn({ upstream: this.upstream.name, unanswered: pending.size }, 'upstream request timed out')
        source?.destroy(expired.error)
        if (session !== undefined && pending.size > 0) this.cancelUpstream(session, [...pending], ctx.log, 'Request timed out')
      })
    // A client that goes away before its answers arrive cancels them upstream too: an HTTP
    // disconnect alone is not a cancellation for 2025-era servers, so say it in MCP terms.
    const onAbort = (): void => {
      deadline?.clear()
      deadline?.abort.abort()
      if (session !== undefined && pending.size > 0) this.cancelUpstream(session, [...pending], ctx.log)
    }
    // A client gone before this point (while interceptors or the store were awaited) fired its
    // abort already: a listener added now would never run, and nothing may be sent for it.
    if (ctx.signal.aborted) {
      deadline?.clear()
      throw Object.assign(new Error('the client went away before its request was sent'), { name: 'AbortError' })
    }
    ctx.signal.once('abort', onAbort)
    const settle = (): void => { ctx.signal.off('abort', onAbort) }

    const watched = this.observers.length > 0
    let started = 0
    const headers = upstreamRequestHeaders(ctx.headers, session?.upstreamSessionId, session?.protocolVersion)
    let raw: Buffer | string = body.raw
    let trace: ExchangeTrace | undefined
    if (watched) {
      for (const message of body.messages) {
        for (const observer of this.observers) observer.message?.('client_to_upstream', message, this.upstream.name)
      }
      trace = this.startTrace(ctx, body, session)
      if (trace !== undefined) {
        Object.assign(headers, trace.headers)
        // 2026-07-28 carries trace context in `_meta` too: the one case the body is re-encoded.
        if (ctx.resolution.kind === 'stateless' && trace.traceparent !== undefined) raw = withMetaTraceparent(body, trace.traceparent)
      }
      started = performance.now()
    }
    // The trace ends with the answer: for a logged SSE stream, when the stream is complete.
    let ended = false
    const finished = trace === undefined
      ? undefined
      : () => {
          if (ended) return
          ended = true
          trace.end(status)
        }
    const done = finished === undefined ? settle : () => { settle(); finished() }
    let status: number | string = 0
    let answer: UpstreamAnswer
    try {
      answer = await this.upstream.send({
        headers,
        body: raw,
        messages: body.messages,
        opensSession: ctx.resolution.kind === 'initialize',
        signal: deadline?.abort ?? ctx.signal,
        principal: ctx.principal?.id,
        maxBytes: this.maxResponseBytes
      })
    } catch (err) {
      deadline?.clear()
      status = deadline?.expired === true ? deadline.error.code : outcomeOf(err)
      done()
      if (watched) this.observeRequest(body, started, status, ctx.resolution.kind === 'stateless')
      if (deadline?.expired === true) return timedOut(deadline, body, pending)
      return await this.refused(err, session)
    }
    status = answer.kind === 'accepted' ? 202 : 200
    if (watched) this.observeRequest(body, started, status, ctx.resolution.kind === 'stateless')
    if (deadline !== undefined) {
      if (answer.kind === 'stream') {
        source = answer.events
        source.onFinish(() => deadline.clear())
      } else {
        deadline.clear()
      }
    }
    try {
      return await this.answered(ctx, body, answer, session, pending, settle, finished, local, deadline, place)
    } catch (err) {
      // Failed before the answer was handed on (the store refused the new session, say): let go
      // of it, so its connection or channel entry is not held and its deadline is cleared.
      releaseAnswer(answer)
      status = deadline?.expired === true ? deadline.error.code : (err as { code?: string }).code ?? status
      done()
      if (deadline?.expired === true) return timedOut(deadline, body, pending)
      throw err
    }
  }

  private deadline (body: ParsedBody, onExpire: (deadline: Deadline) => void): Deadline | undefined {
    const timeouts = this.timeouts as CheckedTimeouts
    const idle = timeoutFor(timeouts, body.messages)
    if (idle === 0 && timeouts.maxRequestTimeout === 0) return undefined
    return new Deadline(this.upstream.name, idle, timeouts.maxRequestTimeout, body.messages, onExpire)
  }

  /** The exchange's interceptors for messages from the upstream, if any may act on them. */
  private upstreamFilter (ctx: ExchangeContext, session: SessionRecord | undefined): MessageFilter | undefined {
    const chain = ctx.interceptors
    if (chain === undefined || !chain.watches('upstream_to_client')) return undefined
    return upstreamFilter(chain, this.interceptorBase(ctx, session), undefined)
  }

  private interceptorBase (ctx: ExchangeContext, session: SessionRecord | undefined): BaseContext {
    return { session, principal: ctx.principal, upstream: this.upstream.name, config: ctx.routeConfig, log: ctx.log }
  }

  private startTrace (ctx: ExchangeContext, body: ParsedBody, session: SessionRecord | undefined): ExchangeTrace | undefined {
    const first = body.messages[0] as JsonRpcMessage
    const method = methodLabel(bodyMethod(body))
    const name = 'method' in first && first.method === 'tools/call' ? first.params?.name : undefined
    for (const observer of this.observers) {
      const trace = observer.start?.({
        upstream: this.upstream.name,
        method,
        toolName: typeof name === 'string' ? name : undefined,
        sessionId: session?.id,
        incoming: ctx.headers
      })
      if (trace !== undefined) return trace
    }
    return undefined
  }

  private async answered (
    ctx: ExchangeContext,
    body: ParsedBody,
    answer: UpstreamAnswer,
    session: SessionRecord | undefined,
    pending: PendingRequests,
    settle: () => void,
    finished: (() => void) | undefined,
    local: JsonRpcMessage[],
    deadline: Deadline | undefined,
    place: Place | undefined
  ): Promise<OutboundResponse | undefined> {
    const done = finished === undefined ? settle : (): void => { settle(); finished() }
    const headers: Record<string, string> = {}
    let opened: SessionRecord | undefined
    const initialize = ctx.resolution.kind === 'initialize' ? findInitialize(body.messages) : undefined
    if (initialize !== undefined) {
      const params = initialize.params ?? {}
      opened = await this.sessions.open({
        upstream: this.upstream.name,
        upstreamSessionId: answer.sessionId ?? null,
        protocolVersion: typeof params.protocolVersion === 'string' ? params.protocolVersion : DEFAULT_NEGOTIATED_VERSION,
        clientInfo: params.clientInfo as Record<string, unknown> | undefined,
        clientCapabilities: params.capabilities as Record<string, unknown> | undefined,
        ...(ctx.principal === undefined ? {} : { principal: ctx.principal.id })
      })
      // The store counts the session now: holding its place too would count it twice.
      place?.release()
      headers[HEADER.sessionId] = opened.id
      ctx.log.info({ sessionId: opened.id, upstream: this.upstream.name }, 'session opened')
      ctx.onSessionOpened?.(opened)
    }
    const watcher = opened === undefined ? undefined : this.negotiationWatcher(opened, initialize as JsonRpcRequest, ctx.log)
    const observe = this.observers.length > 0 ? this.observeUpstream : undefined
    const seen = watcher === undefined
      ? observe
      : observe === undefined ? watcher : (message: JsonRpcMessage) => { watcher(message); observe(message) }
    const onMessage = deadline === undefined
      ? seen
      : seen === undefined ? (message: JsonRpcMessage) => deadline.see(message) : (message: JsonRpcMessage) => { deadline.see(message); seen(message) }

    const streamSession = session ?? opened
    const chain = ctx.interceptors !== undefined && ctx.interceptors.watches('upstream_to_client') ? ctx.interceptors : undefined
    const base = chain === undefined ? undefined : this.interceptorBase(ctx, streamSession)
    // Answers made here for part of a batch go first, as events of the same stream.
    const filter = chain === undefined ? undefined : upstreamFilter(chain, base as BaseContext, requestsById(body.messages))
    if (answer.kind === 'accepted') {
      done()
      return { status: 202, headers, body: null }
    }
    if (answer.kind === 'single') {
      done()
      const out = await jsonAnswer({ answer, pending, filter, local, onMessage, upstream: this.upstream.name, log: ctx.log })
      // Progress the upstream sent on the GET stream before this answer goes out first.
      const settled = session === undefined ? undefined : this.resumable?.hub.settle(session.id)
      if (settled !== undefined) await settled
      if (out === undefined) return { status: 202, headers, body: null }
      return { status: 200, headers: { ...JSON_HEADERS, ...headers }, body: out }
    }
    const events = answer.events
    if (this.resumable !== undefined && ctx.openStream !== undefined && streamSession !== undefined) {
      if (this.resumable.hub.hasEnded(streamSession.id)) {
        // The session ended while the upstream was still to answer (a DELETE, an expiry): its log
        // is gone and nobody can resume it, so the client hears what a request on it hears now.
        events.destroy()
        throw new GatewayErrors.SESSION_NOT_FOUND()
      }
      // From here the log owns the exchange: a client disconnect is not a cancellation (it may
      // resume), unless it left before holding any id to resume from.
      settle()
      this.resumable.post({
        session: streamSession,
        source: events,
        headers,
        pending,
        onMessage,
        open: ctx.openStream,
        log: ctx.log,
        onDone: finished,
        filter,
        prelude: local,
        abandon: () => {
          if (pending.size > 0) this.cancelUpstream(streamSession, [...pending], ctx.log)
          events.destroy()
        }
      })
      return undefined
    }
    const relay = {
      source: events,
      pending,
      onMessage,
      filter,
      prelude: local,
      log: ctx.log,
      unanswered: (_id: JsonRpcId, cause: Error | undefined) => {
        // Only an expired deadline has an error to give (it is made on expiry, not per request).
        if (cause !== undefined && deadline?.expired === true) return toJsonRpcError(deadline.error).body.error
        const err = cause === undefined
          ? new GatewayErrors.UPSTREAM_STREAM_ENDED(this.upstream.name)
          : new GatewayErrors.UPSTREAM_UNAVAILABLE(this.upstream.name)
        return toJsonRpcError(err).body.error
      },
      onDone: done
    }
    if (ctx.sendFrame !== undefined) {
      await relayFrames({ ...relay, send: ctx.sendFrame, signal: ctx.signal })
      return { status: 200, headers, body: null }
    }
    return { status: 200, headers: { ...SSE_HEADERS, ...headers }, body: relaySse(relay) }
  }

  /**
   * What the client gets when the upstream refused: a session it forgot ends ours (the client
   * re-initialises); its own 4xx goes back as it is; anything else is thrown as it came.
   */
  async refused (err: unknown, session: SessionRecord | undefined): Promise<OutboundResponse & { body: Buffer | null }> {
    const code = (err as { code?: string }).code
    if (code === 'MCP_GW_UPSTREAM_SESSION_GONE') {
      if (session !== undefined) await this.sessions.end(session.id, 'upstream-gone')
      throw new GatewayErrors.SESSION_NOT_FOUND()
    }
    const reply = refusedReply(err)
    if (reply !== undefined) return reply
    throw err
  }

  /** Opens the server-to-client stream (GET), resuming from `Last-Event-ID` when the client asks. */
  async get (ctx: ExchangeContext): Promise<OutboundResponse | undefined> {
    const session = ctx.resolution.kind === 'session' ? ctx.resolution.session : undefined
    if (session !== undefined && this.resumable !== undefined && ctx.openStream !== undefined) {
      const lastEventId = ctx.headers[HEADER.lastEventId]
      return typeof lastEventId === 'string'
        ? await this.resumable.resume(session, lastEventId, ctx.headers, ctx.openStream, ctx.log, this.upstreamFilter(ctx, session))
        : await this.resumable.get(session, ctx.headers, ctx.openStream, ctx.log, this.upstreamFilter(ctx, session))
    }
    let source: UpstreamEvents
    try {
      source = await this.upstream.listen({ headers: upstreamRequestHeaders(ctx.headers, session?.upstreamSessionId, session?.protocolVersion), signal: ctx.signal })
    } catch (err) {
      return await this.refused(err, session)
    }
    const relay = { source, filter: this.upstreamFilter(ctx, session), log: ctx.log, unanswered: () => ({ code: 0, message: '' }) }
    if (ctx.sendFrame !== undefined) {
      await relayFrames({ ...relay, send: ctx.sendFrame, signal: ctx.signal })
      return { status: 200, headers: {}, body: null }
    }
    return { status: 200, headers: { ...SSE_HEADERS }, body: relaySse({ ...relay, onStart: ctx.onStreamStart }) }
  }

  /** Ends a session: upstream first (best effort), then in the store, whatever the upstream said. */
  async delete (ctx: ExchangeContext): Promise<OutboundResponse> {
    if (ctx.resolution.kind !== 'session') {
      try {
        await this.upstream.end({ headers: upstreamRequestHeaders(ctx.headers, null), signal: ctx.signal })
      } catch (err) {
        return await this.refused(err, undefined)
      }
      return { status: 200, headers: {}, body: null }
    }
    const session = ctx.resolution.session
    await this.endUpstream(session, ctx.log)
    await this.sessions.end(session.id, 'deleted')
    ctx.log.info({ sessionId: session.id, upstream: this.upstream.name }, 'session deleted')
    return { status: 200, headers: {}, body: null }
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
      await this.upstream.end({ headers: { [HEADER.sessionId]: session.upstreamSessionId, [HEADER.protocolVersion]: session.protocolVersion } })
    } catch (err) {
      // An upstream that answered (it forgot the session, it refuses DELETE) has nothing to end.
      const failed = err as { upstreamStatus?: number, code?: string }
      if (failed.upstreamStatus !== undefined || failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE') return
      log.warn({ sessionId: session.id, upstream: this.upstream.name, err }, 'upstream session delete failed')
    }
  }

  private observeRequest (body: ParsedBody, started: number, outcome: number | string, stateless: boolean): void {
    const method = methodLabel(bodyMethod(body))
    const seconds = (performance.now() - started) / 1000
    const upstreamEra = this.upstream.era ?? 'unknown'
    for (const observer of this.observers) {
      observer.upstreamRequest?.(this.upstream.name, method, seconds, outcome)
      observer.era?.(this.upstream.name, stateless ? '2026' : '2025', upstreamEra)
    }
  }

  private negotiationWatcher (session: SessionRecord, initialize: JsonRpcRequest, log: Logger): (message: JsonRpcMessage) => void {
    return (message) => {
      if (!('result' in message) || message.id !== initialize.id) return
      const version = message.result.protocolVersion
      if (typeof version !== 'string' || version === session.protocolVersion) return
      session.protocolVersion = version
      this.sessions.update(session.id, { protocolVersion: version }).catch((err: unknown) => {
        log.error({ sessionId: session.id, err }, 'session update failed')
      })
    }
  }

  private cancelUpstream (session: SessionRecord, ids: JsonRpcId[], log: Logger, reason = 'Client disconnected'): void {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      [HEADER.protocolVersion]: session.protocolVersion
    }
    if (session.upstreamSessionId !== null) headers[HEADER.sessionId] = session.upstreamSessionId
    for (const requestId of ids) {
      const notification: JsonRpcMessage = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } }
      this.upstream.send({ headers, body: JSON.stringify(notification), messages: [notification], maxBytes: this.maxResponseBytes })
        .then(releaseAnswer)
        .catch((err: unknown) => log.debug({ sessionId: session.id, err }, 'upstream cancel failed'))
      log.debug({ sessionId: session.id, requestId }, 'cancelled upstream request for a departed client')
    }
  }
}

/** The body with `_meta.traceparent` set on its (single) request, as 2026-07-28 specifies. */
function withMetaTraceparent (body: ParsedBody, traceparent: string): Buffer | string {
  const first = body.messages[0]
  if (body.batch || first === undefined || !('method' in first)) return body.raw
  const params = { ...first.params, _meta: { ...(first.params?._meta as Record<string, unknown> | undefined), traceparent } }
  return JSON.stringify({ ...first, params })
}

/**
 * A timed-out request is answered, not failed: the session is fine, only the call is over, so the
 * client gets a JSON-RPC error for each request still unanswered, in a 200 it can match by id.
 */
function timedOut (deadline: Deadline, body: ParsedBody, pending: Set<JsonRpcId>): OutboundResponse {
  const { code, message } = toJsonRpcError(deadline.error).body.error
  const errors = [...pending].map((id) => errorResponse(id, code, message))
  return { status: 200, headers: { ...JSON_HEADERS }, body: Buffer.from(JSON.stringify(body.batch ? errors : errors[0])) }
}
