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
import { Readable } from 'node:stream'
import { GatewayErrors } from '../errors.ts'
import { errorResponse, isRequest, isResponse, parseMessages, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER, STATELESS_VERSION } from '../protocol.ts'
import { drain } from '../relay/body.ts'
import { encodeEvent } from '../sse/encode.ts'
import { Answer } from './channel-upstream.ts'
import { META, readAnswer } from './modern-channel.ts'
import type { StreamableHttpUpstream } from './streamable-http.ts'
import type { UpstreamHttpRequest, UpstreamHttpResponse } from './types.ts'

const LEGACY_VERSION = '2025-11-25'
/** Most upstream sessions held at once for one principal and capability set. */
export const MAX_SESSIONS_PER_KEY = 32
/** Most upstream sessions held at once for stateless clients, all keys and dedicated ones together. */
export const MAX_BRIDGED_SESSIONS = 256
/** Most resource URIs one `subscriptions/listen` may name (each is a round trip upstream). */
const MAX_LISTEN_URIS = 256
/** How long an upstream call waits for the client's retry after an `input_required`. */
const RETRY_WAIT_MS = 300_000
const GATEWAY_INFO = { name: 'fastify-mcp-gateway', version: '0.1.0' }
/** An upstream session held for stateless clients and unused this long is ended. */
const IDLE_MS = 600_000

interface Pooled {
  /** The pool it belongs to; undefined: dedicated to one request (auth off), ended after it. */
  key: string | undefined
  upstreamSessionId: string
  protocolVersion: string
  initialize: Record<string, unknown>
  busy: boolean
  /** The call this session is lent to: server-to-client requests go to it. */
  call: Call | undefined
  /** Listeners of a `subscriptions/listen` served from this session's GET stream. */
  listeners: Set<(message: JsonRpcMessage) => void>
  get: AbortController
  gone: boolean
  lastUsed: number
}

/** One upstream call, across the client's retries. */
interface Call {
  session: Pooled
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

const JSON_TYPE = { 'content-type': 'application/json' }

function jsonResponse (status: number, body: unknown): UpstreamHttpResponse {
  return { status, headers: { ...JSON_TYPE }, body: Readable.from([Buffer.from(JSON.stringify(body))]) }
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

export class LegacyBridge {
  private readonly upstream: StreamableHttpUpstream
  private readonly log: Logger
  private readonly pool = new Map<string, Pooled[]>()
  private readonly pending = new Map<string, Call>()
  /** Upstream sessions held (pooled, dedicated, and being opened), against `MAX_BRIDGED_SESSIONS`. */
  private held = 0
  /** Sessions being opened per pool key, so concurrent checkouts cannot pass the per-key cap. */
  private readonly opening = new Map<string, number>()
  /** Sessions lent to one anonymous request each, so `close` ends them too. */
  private readonly dedicated = new Set<Pooled>()

  private readonly sweeper: NodeJS.Timeout

  constructor (upstream: StreamableHttpUpstream, log: Logger) {
    this.upstream = upstream
    this.log = log
    this.sweeper = setInterval(() => { this.sweep() }, 60_000)
    this.sweeper.unref()
  }

  async request (req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    const messages = req.messages ?? (() => { const parsed = parseMessages(String(req.body)); return parsed.ok ? parsed.messages : [] })()
    const message = messages[0]
    if (message === undefined || !isRequest(message)) return { status: 202, headers: {}, body: Readable.from([]) }
    const meta = (message.params?._meta ?? {}) as Record<string, unknown>
    const key = req.principal === undefined ? undefined : `${req.principal}\u0000${capabilityKey(meta[META.clientCapabilities])}`
    if (message.method === 'server/discover') {
      const session = await this.checkout(key, meta)
      this.release(session)
      return jsonResponse(200, { jsonrpc: '2.0', id: message.id, result: this.discoverResult(session) })
    }
    if (message.method === 'subscriptions/listen') return await this.listen(key, meta, message, req)
    const token = message.params?.requestState
    const call = typeof token === 'string' ? this.pending.get(token) : undefined
    // A token is its principal's: anyone else's retry never reaches that call (nor learns it exists).
    if (call !== undefined && call.principal === req.principal) return await this.resume(call, message, req)
    if (call !== undefined) return jsonResponse(200, errorResponse(message.id, -32602, 'Invalid params: unknown requestState'))
    return await this.call(key, meta, message, req, 0)
  }

  private discoverResult (session: Pooled): Record<string, unknown> {
    const init = session.initialize
    return {
      resultType: 'complete',
      supportedVersions: [STATELESS_VERSION],
      capabilities: init.capabilities ?? {},
      ...(init.instructions === undefined ? {} : { instructions: init.instructions }),
      _meta: { [META.serverInfo]: init.serverInfo }
    }
  }

  private headers (session: Pooled): Record<string, string> {
    return {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      [HEADER.sessionId]: session.upstreamSessionId,
      [HEADER.protocolVersion]: session.protocolVersion
    }
  }

  /**
   * Lends an idle session of this key, opening one when none is free; with no key (auth off), a
   * new session for this request alone. Caps are checked and places taken before any await.
   */
  private async checkout (key: string | undefined, meta: Record<string, unknown>): Promise<Pooled> {
    const sessions = key === undefined ? undefined : this.pool.get(key)
    const idle = sessions?.find((session) => !session.busy && !session.gone)
    if (idle !== undefined) {
      idle.busy = true
      return idle
    }
    if (key !== undefined && (sessions?.length ?? 0) + (this.opening.get(key) ?? 0) >= MAX_SESSIONS_PER_KEY) {
      throw new GatewayErrors.UPSTREAM_FULL(this.upstream.name, MAX_SESSIONS_PER_KEY)
    }
    if (this.held >= MAX_BRIDGED_SESSIONS && !this.evictIdle()) throw new GatewayErrors.UPSTREAM_FULL(this.upstream.name, MAX_BRIDGED_SESSIONS)
    this.held++
    if (key !== undefined) this.opening.set(key, (this.opening.get(key) ?? 0) + 1)
    let session: Pooled
    try {
      session = await this.open(key, meta)
    } catch (err) {
      this.held--
      throw err
    } finally {
      if (key !== undefined) {
        const left = (this.opening.get(key) ?? 1) - 1
        if (left === 0) this.opening.delete(key)
        else this.opening.set(key, left)
      }
    }
    session.busy = true
    if (key === undefined) {
      this.dedicated.add(session)
    } else {
      const pooled = this.pool.get(key)
      if (pooled === undefined) this.pool.set(key, [session])
      else pooled.push(session)
    }
    return session
  }

  /** Ends the least recently used idle pooled session, to make room; false when none is idle. */
  private evictIdle (): boolean {
    let oldest: Pooled | undefined
    for (const sessions of this.pool.values()) {
      for (const session of sessions) {
        if (!session.busy && !session.gone && (oldest === undefined || session.lastUsed < oldest.lastUsed)) oldest = session
      }
    }
    if (oldest === undefined) return false
    this.end(oldest)
    return true
  }

  private release (session: Pooled): void {
    session.busy = false
    session.call = undefined
    session.lastUsed = Date.now()
    // A session lent to one anonymous request holds that request's state: it ends with it.
    if (session.key === undefined) this.end(session)
  }

  /** Forgets a session and ends it upstream (best effort). */
  private end (session: Pooled): void {
    if (session.gone) return
    this.forget(session)
    this.deleteUpstream(session)
  }

  private deleteUpstream (session: Pooled): void {
    this.upstream.request({ method: 'DELETE', headers: this.headers(session) }).then((res) => drain(res.body), () => {})
  }

  private forget (session: Pooled): void {
    if (session.gone) return
    session.gone = true
    this.held--
    session.get.abort()
    if (session.key === undefined) {
      this.dedicated.delete(session)
      return
    }
    const sessions = this.pool.get(session.key)
    if (sessions === undefined) return
    const left = sessions.filter((s) => s !== session)
    // An empty list would stay for every key ever seen.
    if (left.length === 0) this.pool.delete(session.key)
    else this.pool.set(session.key, left)
  }

  /** Opens an upstream session with the client's capabilities, and its GET stream. */
  private async open (key: string | undefined, meta: Record<string, unknown>): Promise<Pooled> {
    const initialize = {
      jsonrpc: '2.0',
      id: 'gw-init',
      method: 'initialize',
      params: { protocolVersion: LEGACY_VERSION, capabilities: meta[META.clientCapabilities] ?? {}, clientInfo: meta[META.clientInfo] ?? GATEWAY_INFO }
    }
    const res = await this.upstream.request({ method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(initialize) })
    const upstreamSessionId = res.headers[HEADER.sessionId]
    let result: Record<string, unknown> | undefined
    await readAnswer(res as never, (message) => { if ('result' in message) result = message.result })
    if (res.status >= 300 || result === undefined || typeof upstreamSessionId !== 'string') {
      throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.upstream.name, `initialize answered HTTP ${res.status}`)
    }
    const session: Pooled = {
      key,
      upstreamSessionId,
      protocolVersion: typeof result.protocolVersion === 'string' ? result.protocolVersion : LEGACY_VERSION,
      initialize: result,
      busy: false,
      call: undefined,
      listeners: new Set(),
      get: new AbortController(),
      gone: false,
      lastUsed: Date.now()
    }
    try {
      const ack = await this.upstream.request({ method: 'POST', headers: this.headers(session), body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
      drain(ack.body)
      if (ack.status >= 300) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.upstream.name, `notifications/initialized answered HTTP ${ack.status}`)
    } catch (err) {
      // The upstream holds a session nobody will use: end it there, not only here.
      this.deleteUpstream(session)
      throw err
    }
    void this.readGet(session)
    return session
  }

  /**
   * The session's server-to-client stream: its requests belong to the call it is lent to. Opened
   * again when the upstream ends it, for as long as the session lives.
   */
  private async readGet (session: Pooled): Promise<void> {
    let failures = 0
    while (!session.gone) {
      try {
        const res = await this.upstream.request({ method: 'GET', headers: { ...this.headers(session), accept: 'text/event-stream' }, signal: session.get.signal, longLived: true })
        if (res.status !== 200) {
          // No GET stream (405) is a fine upstream: its requests come on the call's own stream. A
          // 404 is taken the same way: servers without a GET route answer it too, and a session
          // really gone shows on its next POST (404 there: a fresh session, once).
          drain(res.body)
          return
        }
        failures = 0
        await readAnswer(res as never, (message) => {
          if (session.call !== undefined && !session.call.done && isRequest(message)) this.fromUpstream(session.call, message)
          else for (const listener of session.listeners) listener(message)
        })
      } catch (err) {
        if (session.get.signal.aborted) return
        this.log.debug({ upstream: this.upstream.name, err }, 'bridged session GET stream lost')
      }
      failures++
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5000)).unref())
    }
  }

  /** Sessions idle past `IDLE_MS` are ended upstream: a stateless client does not say it is done. */
  private sweep (): void {
    const before = Date.now() - IDLE_MS
    for (const sessions of [...this.pool.values()]) {
      for (const session of sessions) {
        if (session.busy || session.lastUsed >= before) continue
        this.end(session)
      }
    }
  }

  private async call (key: string | undefined, meta: Record<string, unknown>, message: JsonRpcRequest, req: UpstreamHttpRequest, attempt: number): Promise<UpstreamHttpResponse> {
    const session = await this.checkout(key, meta)
    const abort = new AbortController()
    const call: Call = { session, principal: req.principal, method: message.method, upstreamId: message.id, answer: undefined, clientId: message.id, held: [], asked: new Map(), token: undefined, timer: undefined, done: false, abort }
    session.call = call
    let res: UpstreamHttpResponse
    try {
      res = await this.upstream.request({ method: 'POST', headers: this.headers(session), body: JSON.stringify(message), signal: abort.signal })
    } catch (err) {
      this.release(session)
      throw err
    }
    if (res.status === 404 && attempt === 0) {
      // The upstream forgot this session: a fresh one, once.
      drain(res.body)
      this.forget(session)
      return await this.call(key, meta, message, req, 1)
    }
    if (res.status >= 300) {
      this.release(session)
      return res
    }
    const answered = this.attach(call, message.id, req)
    void readAnswer(res as never, (upstreamMessage) => this.fromUpstream(call, upstreamMessage))
      .catch((err: unknown) => this.fromUpstream(call, errorResponse(call.upstreamId, -32060, (err as Error).message)))
      .finally(() => {
        if (!call.done) this.fromUpstream(call, errorResponse(call.upstreamId, -32065, `Upstream ${this.upstream.name} ended the stream before answering this request`))
      })
    return await answered
  }

  /** A client (or its retry) now waits on this call: what comes from upstream goes to it. */
  private attach (call: Call, clientId: JsonRpcId, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    return new Promise((resolve) => {
      call.clientId = clientId
      call.answer = new Answer([clientId], {}, resolve, () => {
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
  private async resume (call: Call, message: JsonRpcRequest, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
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
    const res = await this.upstream.request({ method: 'POST', headers: this.headers(call.session), body: JSON.stringify(answers.length === 1 ? answers[0] : answers) })
    drain(res.body)
    return await answered
  }

  private cancel (call: Call): void {
    if (call.done) return
    call.done = true
    const notification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: call.upstreamId, reason: 'Client went away' } }
    this.upstream.request({ method: 'POST', headers: this.headers(call.session), body: JSON.stringify(notification) })
      .then((res) => drain(res.body))
      .catch(() => {})
    this.finish(call)
  }

  private finish (call: Call): void {
    if (call.timer !== undefined) clearTimeout(call.timer)
    if (call.token !== undefined) this.pending.delete(call.token)
    this.release(call.session)
  }

  /** `subscriptions/listen` from a session's GET stream, filtered to what the client opted in to. */
  private async listen (key: string | undefined, meta: Record<string, unknown>, message: JsonRpcRequest, req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    const filter = (message.params?.notifications ?? {}) as { toolsListChanged?: boolean, promptsListChanged?: boolean, resourcesListChanged?: boolean, resourceSubscriptions?: string[] }
    const uris = new Set(Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions.map(String) : [])
    // One upstream round trip per URI, on a list the client writes: bounded.
    if (uris.size > MAX_LISTEN_URIS) return jsonResponse(200, errorResponse(message.id, -32602, `Invalid params: at most ${MAX_LISTEN_URIS} resourceSubscriptions`))
    const session = await this.checkout(key, meta)
    try {
      for (const uri of uris) {
        const res = await this.upstream.request({ method: 'POST', headers: this.headers(session), body: JSON.stringify({ jsonrpc: '2.0', id: `gw-sub-${uri}`, method: 'resources/subscribe', params: { uri } }) })
        drain(res.body)
      }
    } catch (err) {
      // The session is given back (or ended, for an anonymous client), never left busy.
      this.release(session)
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
    const stream = new Readable({
      read () {},
      destroy: (err, callback) => {
        session.listeners.delete(listener)
        this.release(session)
        callback(err)
      }
    })
    const listener = (notification: JsonRpcMessage): void => {
      if (!wanted(notification)) return
      stream.push(encodeEvent({ data: JSON.stringify({ ...notification, params: tag((notification as { params?: Record<string, unknown> }).params) }) }))
    }
    session.listeners.add(listener)
    // A listen holds its session: lend it to no call, so no request of the upstream is misread.
    session.call = undefined
    stream.push(encodeEvent({ data: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: tag({ notifications: filter }) }) }))
    const signal = req.signal
    if (signal !== undefined) {
      const onAbort = (): void => { stream.destroy() }
      if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true })
      else signal.once('abort', onAbort)
    }
    return { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }, body: stream }
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    for (const call of this.pending.values()) this.cancel(call)
    // In parallel: one after another, a slow upstream would multiply into the shutdown budget.
    await Promise.allSettled([...this.pool.values()].flat().concat([...this.dedicated]).filter((session) => !session.gone).map(async (session) => {
      session.get.abort()
      const res = await this.upstream.request({ method: 'DELETE', headers: this.headers(session) })
      drain(res.body)
    }))
    this.pool.clear()
    this.dedicated.clear()
  }
}
