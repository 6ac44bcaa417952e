/**
 * 2026-07-28 clients to a 2025-era upstream: the gateway holds upstream sessions on the stateless
 * clients' behalf and answers as a 2026 server would.
 *
 * - Isolation: an upstream session keeps state (log level, subscriptions, whatever the server
 *   holds per session), so it is only ever shared by requests of one principal. With inbound auth
 *   on, sessions are pooled per principal (and per declared client capabilities, which the
 *   upstream fixed at `initialize`). With auth off nothing says two requests come from the same
 *   client, so each request gets an upstream session of its own, ended when the request is over.
 *   The pool is bounded in all (idle sessions of others are ended first to make room) and per key.
 * - Each session is lent to one request at a time, so whatever the upstream asks on it (an
 *   elicitation on its GET stream, say) belongs to that request. A session the upstream forgot
 *   (404) is replaced and the request tried again.
 * - `server/discover` is answered from the session's `initialize` result.
 * - A server-to-client request (elicitation, sampling, roots) during a call ends the client's
 *   response with an `input_required` result; the client's retry (with `inputResponses` and the
 *   `requestState` the gateway minted) sends the answers upstream and continues the same
 *   upstream call, whose final result answers the retry.
 * - `subscriptions/listen` is served from a session's GET stream: acknowledged, then the change
 *   notifications the client opted in to, tagged with its subscription id.
 * - Results get `resultType: "complete"`; a closed client stream cancels the call upstream.
 */
import { randomUUID } from 'node:crypto'
import { errorResponse, isRequest, isResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { GatewayErrors } from '../errors.ts'
import { STATELESS_VERSION } from '../protocol.ts'
import { Answer } from './channel-session.ts'
import { messageEvent, readMessages, releaseAnswer, singleAnswer as single, UpstreamEvents, type UpstreamAnswer } from './events.ts'
import { META } from './modern-upstream-for-legacy-clients.ts'
import { LegacyUpstreamSessions, type LegacySession } from './legacy-upstream-sessions.ts'
import type { Upstream, UpstreamSend } from './types.ts'

/** Most resource URIs one `subscriptions/listen` may name (each is a round trip upstream). */
const MAX_LISTEN_URIS = 256
/** How long an upstream call waits for the client's retry after an `input_required`. */
const RETRY_WAIT_MS = 300_000

/** One upstream call, across the client's retries. */
interface Call {
  session: LegacySession<Call>
  /** Whose call it is: only that principal's retry may continue it. */
  principal: string | undefined
  method: string
  upstreamId: JsonRpcId
  answer: Answer | undefined
  /** The client request id the current answer is for. */
  clientId: JsonRpcId
  /** Messages that came while no answer was attached (between an input_required and its retry). */
  held: JsonRpcMessage[]
  /** Server-to-client requests of the current round, by the key the client answers under. */
  asked: Map<string, JsonRpcId>
  token: string | undefined
  timer: NodeJS.Timeout | undefined
  done: boolean
  abort: AbortController
}


/** Results 2026-07-28 makes cacheable (`ttlMs`, `cacheScope` required). */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/read', 'resources/templates/list'])

/**
 * A 2025 result as a 2026 client expects it: `resultType`, and for cacheable results a freshness
 * hint of none, private (a 2025 server's lists may vary per session, and it said nothing).
 */
function complete (message: JsonRpcMessage, id: JsonRpcId, method: string): JsonRpcMessage {
  if (!('result' in message)) return { ...message, id } as JsonRpcMessage
  const result: Record<string, unknown> = { ...message.result, resultType: 'complete' }
  if (CACHEABLE.has(method)) {
    result.ttlMs ??= 0
    result.cacheScope ??= 'private'
  }
  return { jsonrpc: '2.0', id, result }
}

/**
 * The part of a client's declared capabilities that makes an upstream session fit it: top-level
 * names and their flags, sorted. Anything else a client puts there does not split the pool.
 */
function capabilityKey (value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ''
  const parts: string[] = []
  for (const name of Object.keys(value).sort().slice(0, 16)) {
    if (!/^[A-Za-z][\w.-]{0,63}$/.test(name)) continue
    const inner = (value as Record<string, unknown>)[name]
    const flags = typeof inner === 'object' && inner !== null && !Array.isArray(inner)
      ? Object.keys(inner).filter((flag) => /^[A-Za-z][\w.-]{0,63}$/.test(flag)).sort().slice(0, 16)
      : []
    parts.push(`${name}(${flags.join(',')})`)
  }
  return parts.join(';')
}

export class LegacyUpstreamForModernClients {
  private readonly upstream: Upstream
  private readonly sessions: LegacyUpstreamSessions<Call>
  /** Calls waiting for the client's retry after an `input_required`, by `requestState` token. */
  private readonly pending = new Map<string, Call>()

  constructor (upstream: Upstream, log: Logger) {
    this.upstream = upstream
    this.sessions = new LegacyUpstreamSessions(upstream, log, (call, message) => { this.fromUpstream(call, message) })
  }

  /** A stateless client's request, answered as a 2026 server would, as messages. */
  async send (req: UpstreamSend): Promise<UpstreamAnswer> {
    const message = req.messages[0]
    if (message === undefined || !isRequest(message)) return { kind: 'accepted', sessionId: undefined }
    const meta = (message.params?._meta ?? {}) as Record<string, unknown>
    const key = req.principal === undefined ? undefined : `${req.principal}\u0000${capabilityKey(meta[META.clientCapabilities])}`
    if (message.method === 'server/discover') {
      const session = await this.sessions.checkout(key, meta, req.principal, req.caller)
      this.sessions.release(session)
      return single({ jsonrpc: '2.0', id: message.id, result: this.discoverResult(session) })
    }
    if (message.method === 'subscriptions/listen') return await this.listen(key, meta, message, req)
    const token = message.params?.requestState
    const call = typeof token === 'string' ? this.pending.get(token) : undefined
    // A token is its principal's: anyone else's retry never reaches that call (nor learns it exists).
    if (call !== undefined && call.principal === req.principal) return await this.resume(call, message, req)
    if (call !== undefined) return single(errorResponse(message.id, -32602, 'Invalid params: unknown requestState'))
    return await this.call(key, meta, message, req, 0)
  }

  private discoverResult (session: LegacySession<Call>): Record<string, unknown> {
    const init = session.initialize
    return {
      resultType: 'complete',
      supportedVersions: [STATELESS_VERSION],
      capabilities: init.capabilities ?? {},
      ...(init.instructions === undefined ? {} : { instructions: init.instructions }),
      _meta: { [META.serverInfo]: init.serverInfo }
    }
  }

  private async call (key: string | undefined, meta: Record<string, unknown>, message: JsonRpcRequest, req: UpstreamSend, attempt: number): Promise<UpstreamAnswer> {
    const session = await this.sessions.checkout(key, meta, req.principal, req.caller)
    const abort = new AbortController()
    const call: Call = { session, principal: req.principal, method: message.method, upstreamId: message.id, answer: undefined, clientId: message.id, held: [], asked: new Map(), token: undefined, timer: undefined, done: false, abort }
    session.call = call
    let answer: UpstreamAnswer
    try {
      answer = await this.sessions.post(session, [message], abort.signal)
    } catch (err) {
      if ((err as { code?: string }).code === 'MCP_GW_UPSTREAM_SESSION_GONE' && attempt === 0) {
        // The upstream forgot this session: a fresh one, once.
        this.sessions.forget(session)
        return await this.call(key, meta, message, req, 1)
      }
      this.sessions.release(session)
      // A stateless client holds no session to lose: a 404 for it would be misread.
      if ((err as { code?: string }).code === 'MCP_GW_UPSTREAM_SESSION_GONE') throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.upstream.name, 'it forgot a session it had just opened')
      // Whatever else the upstream refused is the client's to see.
      throw err
    }
    const answered = this.attach(call, message.id, req)
    void readMessages(answer, (upstreamMessage) => { this.fromUpstream(call, upstreamMessage) })
      .catch((err: unknown) => this.fromUpstream(call, errorResponse(call.upstreamId, -32060, (err as Error).message)))
      .finally(() => {
        if (!call.done) this.fromUpstream(call, errorResponse(call.upstreamId, -32065, `Upstream ${this.upstream.name} ended the stream before answering this request`))
      })
    return await answered
  }

  /** A client (or its retry) now waits on this call: what comes from upstream goes to it. */
  private attach (call: Call, clientId: JsonRpcId, req: UpstreamSend): Promise<UpstreamAnswer> {
    return new Promise((resolve) => {
      call.clientId = clientId
      call.answer = new Answer([clientId], undefined, resolve, () => {
        // The client closed its stream: in 2026 that cancels the request.
        if (!call.done) this.cancel(call)
      })
      const signal = req.signal
      if (signal !== undefined) {
        const onAbort = (): void => { if (!call.done && call.answer !== undefined) call.answer.abort() }
        if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true })
        else signal.once('abort', onAbort)
      }
      const held = call.held
      call.held = []
      for (const message of held) this.fromUpstream(call, message)
    })
  }

  private fromUpstream (call: Call, message: JsonRpcMessage): void {
    if (call.done) return
    const answer = call.answer
    if (answer === undefined) {
      call.held.push(message)
      return
    }
    if (isRequest(message)) {
      // The upstream asks the client something: this round ends with input_required.
      const key = `input-${call.asked.size + 1}`
      call.asked.set(key, message.id)
      call.token ??= randomUUID()
      this.pending.set(call.token, call)
      call.answer = undefined
      call.timer = setTimeout(() => this.cancel(call), RETRY_WAIT_MS)
      call.timer.unref()
      answer.deliver({
        jsonrpc: '2.0',
        id: call.clientId,
        result: { resultType: 'input_required', inputRequests: { [key]: { method: message.method, params: message.params ?? {} } }, requestState: call.token }
      })
      return
    }
    if (isResponse(message)) {
      if (message.id !== call.upstreamId) return
      call.done = true
      this.finish(call)
      answer.deliver(complete(message, call.clientId, call.method))
      return
    }
    answer.deliver(message)
  }

  /** The client's retry: its answers go upstream, and the call's stream continues to it. */
  private async resume (call: Call, message: JsonRpcRequest, req: UpstreamSend): Promise<UpstreamAnswer> {
    if (call.timer !== undefined) clearTimeout(call.timer)
    const responses = (message.params?.inputResponses ?? {}) as Record<string, unknown>
    const answers: JsonRpcMessage[] = []
    for (const [key, id] of call.asked) {
      const response = responses[key]
      answers.push(response === undefined
        ? errorResponse(id, -32600, 'The client gave no answer')
        : { jsonrpc: '2.0', id, result: response as Record<string, unknown> })
    }
    call.asked.clear()
    const answered = this.attach(call, message.id, req)
    if (answers.length > 0) releaseAnswer(await this.sessions.post(call.session, answers))
    return await answered
  }

  private cancel (call: Call): void {
    if (call.done) return
    call.done = true
    this.sessions.tell(call.session, [{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: call.upstreamId, reason: 'Client went away' } }])
    this.finish(call)
  }

  private finish (call: Call): void {
    if (call.timer !== undefined) clearTimeout(call.timer)
    if (call.token !== undefined) this.pending.delete(call.token)
    this.sessions.release(call.session)
  }

  /** `subscriptions/listen` from a session's GET stream, filtered to what the client opted in to. */
  private async listen (key: string | undefined, meta: Record<string, unknown>, message: JsonRpcRequest, req: UpstreamSend): Promise<UpstreamAnswer> {
    const filter = (message.params?.notifications ?? {}) as { toolsListChanged?: boolean, promptsListChanged?: boolean, resourcesListChanged?: boolean, resourceSubscriptions?: string[] }
    const uris = new Set(Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions.map(String) : [])
    // One upstream round trip per URI, on a list the client writes: bounded.
    if (uris.size > MAX_LISTEN_URIS) return single(errorResponse(message.id, -32602, `Invalid params: at most ${MAX_LISTEN_URIS} resourceSubscriptions`))
    const session = await this.sessions.checkout(key, meta, req.principal, req.caller)
    try {
      for (const uri of uris) {
        await readMessages(await this.sessions.post(session, [{ jsonrpc: '2.0', id: `gw-sub-${uri}`, method: 'resources/subscribe', params: { uri } }]), () => {})
      }
    } catch (err) {
      // The session is given back (or ended, for an anonymous client), never left busy.
      this.sessions.release(session)
      throw err
    }
    const wanted = (notification: JsonRpcMessage): boolean => {
      if (!('method' in notification) || isRequest(notification)) return false
      switch (notification.method) {
        case 'notifications/tools/list_changed': return filter.toolsListChanged === true
        case 'notifications/prompts/list_changed': return filter.promptsListChanged === true
        case 'notifications/resources/list_changed': return filter.resourcesListChanged === true
        case 'notifications/resources/updated': return uris.has(String(notification.params?.uri))
        default: return false
      }
    }
    const tag = (params: Record<string, unknown> | undefined): Record<string, unknown> => ({ ...params, _meta: { ...(params?._meta as Record<string, unknown> | undefined), [META.subscriptionId]: message.id } })
    const stream = new UpstreamEvents({
      stop: () => {
        session.listeners.delete(listener)
        this.sessions.release(session)
      }
    })
    const push = (out: JsonRpcMessage): void => { stream.push(messageEvent(out)) }
    const listener = (notification: JsonRpcMessage): void => {
      if (!wanted(notification)) return
      push({ ...notification, params: tag((notification as { params?: Record<string, unknown> }).params) } as JsonRpcMessage)
    }
    session.listeners.add(listener)
    // A listen holds its session: lend it to no call, so no request of the upstream is misread.
    session.call = undefined
    push({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: tag({ notifications: filter }) })
    const signal = req.signal
    if (signal !== undefined) {
      const onAbort = (): void => { stream.destroy() }
      if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true })
      else signal.once('abort', onAbort)
    }
    return { kind: 'stream', sessionId: undefined, events: stream }
  }

  async close (): Promise<void> {
    for (const call of this.pending.values()) this.cancel(call)
    await this.sessions.close()
  }

  /** Shutdown past its deadline: timers stopped, streams dropped, nothing sent upstream. */
  destroy (): void {
    for (const call of this.pending.values()) if (call.timer !== undefined) clearTimeout(call.timer)
    this.pending.clear()
    this.sessions.stop()
  }
}
