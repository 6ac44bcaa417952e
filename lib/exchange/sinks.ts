/**
 * Where an exchange's answer goes, by the client's transport and the upstream's answer: whole
 * messages (a JSON body, or frames, as the adapter writes them), a logged SSE stream (the event
 * log; the client may resume), an unlogged SSE stream, or WebSocket frames as they come. Every
 * sink gives each pending request exactly one answer.
 */
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import { errorResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import { DEFAULT_NEGOTIATED_VERSION, HEADER } from '../protocol.ts'
import { upstreamFilter, requestsById, type BaseContext } from '../interceptors/apply.ts'
import { jsonAnswer } from '../relay/json-answer.ts'
import { relayFrames, relaySse } from '../relay/sse-relay.ts'
import { findInitialize } from '../session/resolve.ts'
import type { SessionRecord } from '../session/store.ts'
import type { UpstreamAnswer } from '../upstream/events.ts'
import { SSE_HEADERS, messagesAnswer, noAnswer, type ClientAnswer } from './answer.ts'
import type { Deadline } from '../deadline.ts'
import type { Exchange } from './exchange.ts'

type OnMessage = ((message: JsonRpcMessage) => void) | undefined

/**
 * A timed-out request is answered, not failed: the session is fine, only the call is over, so the
 * client gets a JSON-RPC error for each request still unanswered, which it can match by id.
 */
export function timedOut (exchange: Exchange): ClientAnswer {
  const { code, message } = toJsonRpcError((exchange.deadline as Deadline).error).body.error
  const errors = [...exchange.pending].map((id) => errorResponse(id, code, message))
  return messagesAnswer(errors, exchange.body.batch)
}

/** The upstream's answer to the client: the session opened first when it was an initialize. */
export async function deliverAnswer (exchange: Exchange, answer: UpstreamAnswer): Promise<ClientAnswer> {
  const { ctx, deps } = exchange
  const headers: Record<string, string> = {}
  const opened = ctx.resolution.kind === 'initialize' ? await openSession(exchange, answer) : undefined
  if (opened !== undefined) headers[HEADER.sessionId] = opened.session.id
  const onMessage = messageWatcher(exchange, opened)
  const streamSession = exchange.session ?? opened?.session
  const chain = ctx.interceptors !== undefined && ctx.interceptors.watches('upstream_to_client') ? ctx.interceptors : undefined
  // Answers made here for part of a batch go first, as events of the same stream.
  const filter = chain === undefined ? undefined : upstreamFilter(chain, deps.interceptorBase(ctx, streamSession) as BaseContext, requestsById(exchange.body.messages))
  if (answer.kind === 'accepted') {
    exchange.done()
    return noAnswer(headers)
  }
  if (answer.kind === 'single') {
    exchange.settle()
    const out = await jsonAnswer({ answer, pending: exchange.pending, filter, local: exchange.local, onMessage, upstream: deps.upstream.name, log: ctx.log })
    exchange.finish()
    // Progress the upstream sent on the GET stream before this answer goes out first.
    const settled = exchange.session === undefined ? undefined : deps.resumable?.hub.settle(exchange.session.id)
    if (settled !== undefined) await settled
    return messagesAnswer(out.messages, answer.batch, out.raw, headers)
  }
  const events = answer.events
  const resumable = deps.resumable
  if (resumable !== undefined && ctx.frames === undefined && streamSession !== undefined) {
    if (resumable.hub.hasEnded(streamSession.id)) {
      // The session ended while the upstream was still to answer (a DELETE, an expiry): its log
      // is gone and nobody can resume it, so the client hears what a request on it hears now.
      events.destroy()
      throw new GatewayErrors.SESSION_NOT_FOUND()
    }
    // From here the log owns the exchange: a client disconnect is not a cancellation (it may
    // resume), unless it left before holding any id to resume from.
    exchange.settle()
    return resumable.post({
      session: streamSession,
      source: events,
      headers,
      pending: exchange.pending,
      onMessage,
      log: ctx.log,
      onDone: exchange.finish,
      filter,
      prelude: exchange.local,
      abandon: () => {
        if (exchange.pending.size > 0) deps.cancelUpstream(streamSession, [...exchange.pending], ctx.log, undefined, ctx.principal)
        events.destroy()
      }
    })
  }
  const relay = {
    source: events,
    pending: exchange.pending,
    onMessage,
    filter,
    prelude: exchange.local,
    log: ctx.log,
    unanswered: (_id: JsonRpcId, cause: Error | undefined) => unanswered(exchange, cause),
    onDone: exchange.done
  }
  if (ctx.frames !== undefined) {
    await relayFrames(Object.assign({}, relay, { send: ctx.frames.send, signal: ctx.signal }))
    return { kind: 'framed' }
  }
  return { kind: 'sse', headers: Object.assign({}, SSE_HEADERS, headers), body: relaySse(relay), live: false }
}

/** The error for a request the upstream's stream left unanswered. */
function unanswered (exchange: Exchange, cause: Error | undefined): { code: number, message: string } {
  // Only an expired deadline has an error to give (it is made on expiry, not per request).
  if (cause !== undefined && exchange.deadline?.expired === true) return toJsonRpcError(exchange.deadline.error).body.error
  const name = exchange.deps.upstream.name
  const err = cause === undefined ? new GatewayErrors.UPSTREAM_STREAM_ENDED(name) : new GatewayErrors.UPSTREAM_UNAVAILABLE(name)
  return toJsonRpcError(err).body.error
}

interface Opened { session: SessionRecord, initialize: JsonRpcRequest }

/** For an initialize: the gateway session, opened in the store before any answer is delivered. */
async function openSession (exchange: Exchange, answer: UpstreamAnswer): Promise<Opened | undefined> {
  const { ctx, deps } = exchange
  const initialize = ctx.resolution.kind === 'initialize' ? findInitialize(exchange.body.messages) : undefined
  if (initialize === undefined) return undefined
  const params = initialize.params ?? {}
  const session = await deps.sessions.open({
    upstream: deps.upstream.name,
    upstreamSessionId: answer.sessionId ?? null,
    protocolVersion: typeof params.protocolVersion === 'string' ? params.protocolVersion : DEFAULT_NEGOTIATED_VERSION,
    clientInfo: params.clientInfo as Record<string, unknown> | undefined,
    clientCapabilities: params.capabilities as Record<string, unknown> | undefined,
    ...(ctx.principal === undefined ? {} : { principal: ctx.principal.id })
  })
  // The store counts the session now: holding its place too would count it twice.
  exchange.place?.release()
  ctx.log.info({ sessionId: session.id, upstream: deps.upstream.name }, 'session opened')
  ctx.frames?.sessionOpened(session)
  return { session, initialize }
}

/** What sees each message of the answer: the deadline (progress resets it), observers, negotiation. */
function messageWatcher (exchange: Exchange, opened: Opened | undefined): OnMessage {
  const { deps, deadline } = exchange
  const watchers: Array<(message: JsonRpcMessage) => void> = []
  if (deadline !== undefined) watchers.push((message) => deadline.see(message))
  if (opened !== undefined) watchers.push(negotiationWatcher(exchange, opened))
  if (deps.observers.length > 0) {
    const session = exchange.session?.id
    watchers.push(session === undefined ? deps.observeUpstream : (message) => { deps.observeUpstream(message, session) })
  }
  if (exchange.audit !== undefined) watchers.push(exchange.audit.answered)
  if (watchers.length === 0) return undefined
  if (watchers.length === 1) return watchers[0]
  return (message) => { for (const watch of watchers) watch(message) }
}

/** The version the upstream answered an initialize with is the session's from then on. */
function negotiationWatcher (exchange: Exchange, { session, initialize }: Opened): (message: JsonRpcMessage) => void {
  return (message) => {
    if (!('result' in message) || message.id !== initialize.id) return
    const version = message.result.protocolVersion
    if (typeof version !== 'string' || version === session.protocolVersion) return
    session.protocolVersion = version
    exchange.deps.sessions.update(session.id, { protocolVersion: version }).catch((err: unknown) => {
      exchange.ctx.log.error({ sessionId: session.id, err }, 'session update failed')
    })
  }
}
