/**
 * One client request (a POST, or a WebSocket message) and its way through the gateway, its state
 * in fields: the interceptor gate on the client's messages, the pending tracker (every request
 * gets exactly one answer), the deadline, the trace and observers, and then the sink the answer
 * goes to. The endpoint (forwarder.ts) makes one per request; sinks.ts delivers its answer.
 */
import { Abort } from '../abort.ts'
import { isRequest, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts'
import { Deadline, timeoutFor } from '../deadline.ts'
import { methodLabel, type ExchangeTrace } from '../observer.ts'
import { upstreamRequestHeaders } from '../relay/headers.ts'
import { PendingRequests } from '../relay/pending.ts'
import { interceptClient } from '../interceptors/apply.ts'
import { ExchangeAudit } from '../audit/exchange-audit.ts'
import { toJsonRpcError } from '../errors.ts'
import { bodyMethod, reencoded, type ParsedBody } from '../session/resolve.ts'
import type { SessionRecord } from '../session/store.ts'
import { releaseAnswer, type UpstreamAnswer, type UpstreamEvents } from '../upstream/events.ts'
import { messagesAnswer, noAnswer, type ClientAnswer } from './answer.ts'
import type { ExchangeContext, ExchangeDeps, Place } from './context.ts'
import { deliverAnswer, timedOut } from './sinks.ts'
import { consentAnswers, consentOf, withoutConsentState } from '../upstream-auth/consent.ts'

/** How a failed exchange is counted: the upstream's HTTP status when it gave one, else the error's code. */
function outcomeOf (err: unknown): number | string {
  const failed = err as { upstreamStatus?: number, code?: string }
  if (failed.upstreamStatus !== undefined) return failed.upstreamStatus
  // The same failures from upstreams without HTTP (channels) count as an HTTP upstream's would.
  if (failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE') return 404
  if (failed.code === 'MCP_GW_UPSTREAM_NEEDS_SESSION') return 400
  return failed.code ?? 'error'
}

export class Exchange {
  readonly deps: ExchangeDeps
  readonly ctx: ExchangeContext
  /** What is sent upstream: the client's messages, as interceptors left them. */
  body: ParsedBody
  /** The session the request belongs to (none for an initialize or a stateless request). */
  readonly session: SessionRecord | undefined
  /** A place under the session cap, for an initialize: released once the session opened. */
  readonly place: Place | undefined
  /** Answers made here for part of a batch (blocked or mocked requests): they go first. */
  local: JsonRpcMessage[] = []
  readonly pending: PendingRequests
  /** Its audited requests, when the audit log is on and there are any. */
  readonly audit: ExchangeAudit | undefined
  deadline: Deadline | undefined
  /** The upstream's streamed answer, once there: an expired deadline ends it. */
  private source: UpstreamEvents | undefined
  private trace: ExchangeTrace | undefined
  /**
   * Stops the upstream request: fired when the client leaves, or cancels every request of the
   * exchange. (With a deadline, the deadline's own abort is the request's signal.)
   */
  private stop: Abort | undefined
  /** Every request was cancelled by the client: nothing is owed to it. */
  private cancelledAll = false
  private started = 0
  /** The outcome, as observers count it: an HTTP status or an error code. */
  private status: number | string = 0
  private traceEnded = false

  constructor (deps: ExchangeDeps, ctx: ExchangeContext, body: ParsedBody, place: Place | undefined) {
    this.deps = deps
    this.ctx = ctx
    this.body = body
    this.place = place
    this.session = ctx.resolution.kind === 'session' ? ctx.resolution.session : undefined
    this.pending = new PendingRequests(undefined, deps.onDrop)
    this.audit = deps.audit === undefined
      ? undefined
      : ExchangeAudit.begin(deps.audit, body.messages, { principal: ctx.principal?.id, session: this.session?.id, upstream: deps.upstream.name, memberOf: deps.memberOf })
  }

  get watched (): boolean {
    return this.deps.observers.length > 0
  }

  async run (): Promise<ClientAnswer> {
    const chain = this.ctx.interceptors
    if (chain !== undefined && chain.watches('client_to_upstream')) {
      const early = await this.interceptClient()
      if (early !== undefined) return early
    }
    this.track()
    this.arm()
    // Only a session's requests can be cancelled by a later message (2026 ones by their stream);
    // with a deadline, its abort is the request's signal already.
    if (this.session !== undefined && this.deadline === undefined) this.stop = new Abort()
    // A client gone before this point (while interceptors or the store were awaited) fired its
    // abort already: a listener added now would never run, and nothing may be sent for it.
    if (this.ctx.signal.aborted) {
      this.deadline?.clear()
      throw Object.assign(new Error('the client went away before its request was sent'), { name: 'AbortError' })
    }
    this.ctx.signal.once('abort', this.onAbort)
    if (this.session !== undefined && this.pending.size > 0) this.deps.live(this.session.id, this, true)
    let answer: UpstreamAnswer
    try {
      answer = await this.send()
    } catch (err) {
      return await this.failed(err)
    }
    this.status = answer.kind === 'accepted' ? 202 : 200
    if (this.watched) this.observeRequest()
    const deadline = this.deadline
    if (answer.kind === 'stream') this.source = answer.events
    if (deadline !== undefined) {
      if (answer.kind === 'stream') answer.events.onFinish(() => deadline.clear())
      else deadline.clear()
    }
    try {
      return await deliverAnswer(this, answer)
    } catch (err) {
      // Failed before the answer was handed on (the store refused the new session, say): let go
      // of it, so its connection or channel entry is not held and its deadline is cleared.
      releaseAnswer(answer)
      this.status = this.deadline?.expired === true ? this.deadline.error.code : (err as { code?: string }).code ?? this.status
      this.done()
      if (this.deadline?.expired === true) return timedOut(this)
      throw err
    }
  }

  /** The client's messages through the interceptors; an answer when none is left for the upstream. */
  private async interceptClient (): Promise<ClientAnswer | undefined> {
    const chain = this.ctx.interceptors as NonNullable<ExchangeContext['interceptors']>
    // The client's own messages: a delay on them is cancelled when the client leaves. (Upstream
    // messages of a logged stream must not be: they are logged for the client to resume.)
    const base = this.deps.interceptorBase(this.ctx, this.session)
    base.signal = this.ctx.signal
    const intercepted = interceptClient(chain, this.body.messages, base)
    const out = intercepted instanceof Promise ? await intercepted : intercepted
    this.local = out.answers
    const audit = this.audit
    if (audit !== undefined) {
      for (const answer of out.answers) audit.answered(answer)
      if (out.changed) audit.sent(out.forward)
    }
    if (out.forward.length === 0) {
      // Nothing left for the upstream: blocked or mocked requests are answered here.
      return messagesAnswer(this.local, this.body.batch)
    }
    if (out.changed) {
      const messages = out.forward
      this.body = reencoded(messages, this.body.batch)
    }
    return undefined
  }

  /** Requests to answer; a client's cancellation also stops that request's logged stream. */
  private track (): void {
    for (const message of this.body.messages) {
      if (isRequest(message)) {
        this.pending.add(message.id)
      } else if (this.session !== undefined && 'method' in message && message.method === 'notifications/cancelled') {
        const requestId = message.params?.requestId
        if (typeof requestId === 'string' || typeof requestId === 'number') this.deps.cancelRequest(this.session.id, requestId)
      }
    }
  }

  /** The deadline, when requests wait and timeouts are set: expiry ends the answer with its error. */
  private arm (): void {
    const timeouts = this.deps.timeouts
    if (this.pending.size === 0 || timeouts === undefined) return
    const idle = timeoutFor(timeouts, this.body.messages)
    if (idle === 0 && timeouts.maxRequestTimeout === 0) return
    this.deadline = new Deadline(this.deps.upstream.name, idle, timeouts.maxRequestTimeout, this.body.messages, (expired) => {
      this.ctx.log.warn({ upstream: this.deps.upstream.name, unanswered: this.pending.size }, 'upstream request timed out')
      this.source?.destroy(expired.error)
      this.cancelPending('Request timed out')
    })
  }

  /**
   * A client that goes away before its answers arrive cancels them upstream too: an HTTP
   * disconnect alone is not a cancellation for 2025-era servers, so say it in MCP terms.
   */
  private readonly onAbort = (): void => {
    this.deadline?.clear()
    this.deadline?.abort.abort()
    this.stop?.abort()
    this.cancelPending()
  }

  /**
   * The client cancelled one of this exchange's requests (`notifications/cancelled`, sent on): no
   * answer is owed for it, and once none is owed at all the exchange ends, its sink closed
   * without an error for anyone.
   */
  cancelled (requestId: JsonRpcId): void {
    if (!this.pending.cancel(requestId) || this.pending.size > 0) return
    this.cancelledAll = true
    this.deadline?.clear()
    if (this.source !== undefined) {
      this.source.destroy()
      return
    }
    this.deadline?.abort.abort()
    this.stop?.abort()
  }

  cancelPending (reason?: string): void {
    if (this.session !== undefined && this.pending.size > 0) this.deps.cancelUpstream(this.session, [...this.pending], this.ctx.log, reason, this.ctx.principal)
  }

  /** The answer no longer depends on the client's connection (it is complete, or logged). */
  settle (): void {
    this.ctx.signal.off('abort', this.onAbort)
    if (this.session !== undefined) this.deps.live(this.session.id, this, false)
  }

  /** The trace ends with the answer: for a logged SSE stream, when the stream is complete. */
  readonly finish = (): void => {
    // A request still open when its answer is over got none: the client cancelled it or left.
    this.audit?.close(this.deadline?.expired === true ? 'timeout' : 'cancelled')
    if (this.trace === undefined || this.traceEnded) return
    this.traceEnded = true
    this.trace.end(this.status)
  }

  readonly done = (): void => {
    this.settle()
    this.finish()
  }

  private async send (): Promise<UpstreamAnswer> {
    // A 2026 retry after a consent prompt: the gateway's own requestState is not the upstream's.
    if (this.deps.consentPrompts && this.ctx.resolution.kind === 'stateless') this.dropConsentState()
    const { ctx, body, session } = this
    const headers = upstreamRequestHeaders(ctx.headers, session?.upstreamSessionId, session?.protocolVersion)
    let raw: Buffer | string = body.raw
    if (this.watched) {
      for (const message of body.messages) {
        for (const observer of this.deps.observers) observer.message?.('client_to_upstream', message, this.deps.upstream.name, session?.id)
      }
      const trace = this.trace = this.startTrace()
      if (trace !== undefined) {
        Object.assign(headers, trace.headers)
        // 2026-07-28 carries trace context in `_meta` too: the one case the body is re-encoded.
        if (ctx.resolution.kind === 'stateless' && trace.traceparent !== undefined) raw = withMetaTraceparent(body, trace.traceparent)
      }
      this.started = performance.now()
    }
    return await this.deps.upstream.send({
      headers,
      body: raw,
      messages: body.messages,
      opensSession: ctx.resolution.kind === 'initialize',
      signal: this.deadline?.abort ?? this.stop ?? ctx.signal,
      principal: ctx.principal?.id,
      caller: ctx.principal,
      maxBytes: this.deps.maxResponseBytes
    })
  }

  private dropConsentState (): void {
    let changed = false
    const messages = this.body.messages.map((message) => {
      const stripped = withoutConsentState(message)
      if (stripped === undefined) return message
      changed = true
      return stripped
    })
    if (changed) this.body = reencoded(messages, this.body.batch)
  }

  private async failed (err: unknown): Promise<ClientAnswer> {
    const expired = this.deadline?.expired === true
    this.deadline?.clear()
    // A client's own cancellation is no upstream failure: not counted as one.
    this.status = expired ? (this.deadline as Deadline).error.code : this.cancelledAll ? 202 : outcomeOf(err)
    if (this.audit !== undefined) this.auditFailure(err, expired)
    this.done()
    if (this.watched) this.observeRequest()
    if (expired) return timedOut(this)
    if (this.cancelledAll) return noAnswer()
    const prompt = consentOf(err)
    if (prompt !== undefined) {
      // The user must sign in at the upstream first: told in band, in the client's era's terms.
      return messagesAnswer([...this.local, ...consentAnswers(err as Error, prompt, this.body.messages, this.ctx.resolution.kind === 'stateless')], this.body.batch)
    }
    return await this.deps.refused(err, this.session)
  }

  /** The exchange failed before any answer: its audited requests end with the client's error. */
  private auditFailure (err: unknown, expired: boolean): void {
    const audit = this.audit as ExchangeAudit
    if (this.cancelledAll || this.ctx.signal.aborted) {
      audit.close('cancelled')
      return
    }
    const { code, message } = toJsonRpcError(expired ? (this.deadline as Deadline).error : err as Error).body.error
    audit.close(expired ? 'timeout' : code === -32055 ? 'denied' : 'failed', { code, message })
  }

  private startTrace (): ExchangeTrace | undefined {
    const first = this.body.messages[0] as JsonRpcMessage
    const method = methodLabel(bodyMethod(this.body))
    const name = 'method' in first && first.method === 'tools/call' ? first.params?.name : undefined
    for (const observer of this.deps.observers) {
      const trace = observer.start?.({
        upstream: this.deps.upstream.name,
        method,
        toolName: typeof name === 'string' ? name : undefined,
        sessionId: this.session?.id,
        incoming: this.ctx.headers
      })
      if (trace !== undefined) return trace
    }
    return undefined
  }

  private observeRequest (): void {
    const method = methodLabel(bodyMethod(this.body))
    const seconds = (performance.now() - this.started) / 1000
    const name = this.deps.upstream.name
    const upstreamEra = this.deps.upstream.era ?? 'unknown'
    const clientEra = this.ctx.resolution.kind === 'stateless' ? '2026' : '2025'
    for (const observer of this.deps.observers) {
      observer.upstreamRequest?.(name, method, seconds, this.status)
      observer.era?.(name, clientEra, upstreamEra)
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
