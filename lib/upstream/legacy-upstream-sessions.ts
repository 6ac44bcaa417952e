/**
 * The upstream sessions a 2025-era upstream holds for 2026 clients (see
 * legacy-upstream-for-modern-clients.ts): opened with the client's capabilities, lent to one
 * request at a time, pooled per key (principal and declared capabilities) or dedicated to one
 * request (auth off) and ended after it; bounded in all (idle sessions of others are ended first
 * to make room) and per key; ended upstream when idle. Each session's GET stream is read for as
 * long as the session lives: a request the upstream sends there goes to the call the session is
 * lent to (`onRequest`), anything else to the session's listeners (`subscriptions/listen`).
 */
import type { Caller } from '../upstream-auth/credentials.ts'
import { GatewayErrors } from '../errors.ts'
import { isRequest, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import { readMessages, releaseAnswer, type UpstreamAnswer } from './events.ts'
import { META } from './modern-upstream-for-legacy-clients.ts'
import type { Upstream } from './types.ts'

const LEGACY_VERSION = '2025-11-25'
/** Most upstream sessions held at once for one principal and capability set. */
export const MAX_SESSIONS_PER_KEY = 32
/** Most upstream sessions held at once for stateless clients, all keys and dedicated ones together. */
export const MAX_BRIDGED_SESSIONS = 256
const GATEWAY_INFO = { name: 'fastify-mcp-gateway', version: '0.1.0' }
/** An upstream session held for stateless clients and unused this long is ended. */
const IDLE_MS = 600_000
/** Largest whole (JSON) answer read from the upstream for a bridged request. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024
/** Codes that mean the upstream offers the session no stream of its own (or forgot it). */
const NO_STREAM = new Set(['MCP_GW_UPSTREAM_REFUSED', 'MCP_GW_UPSTREAM_SESSION_GONE'])

export interface LegacySession<C> {
  /** The pool it belongs to; undefined: dedicated to one request (auth off), ended after it. */
  key: string | undefined
  upstreamSessionId: string
  protocolVersion: string
  initialize: Record<string, unknown>
  busy: boolean
  /** The call this session is lent to: server-to-client requests go to it. */
  call: C | undefined
  /** Listeners of a `subscriptions/listen` served from this session's GET stream. */
  listeners: Set<(message: JsonRpcMessage) => void>
  get: AbortController
  gone: boolean
  lastUsed: number
  /** Whom its requests are for (auth on): the last principal's request that checked it out. */
  caller: Caller | undefined
}

export class LegacyUpstreamSessions<C extends { done: boolean }> {
  private readonly upstream: Upstream
  private readonly log: Logger
  /** A request the upstream sent on a session's GET stream, for the call the session is lent to. */
  private readonly onRequest: (call: C, message: JsonRpcMessage) => void
  private readonly pool = new Map<string, Array<LegacySession<C>>>()
  /** Upstream sessions held (pooled, dedicated, and being opened), against `MAX_BRIDGED_SESSIONS`. */
  private held = 0
  /** Sessions being opened per pool key, so concurrent checkouts cannot pass the per-key cap. */
  private readonly opening = new Map<string, number>()
  /** Sessions lent to one anonymous request each, so `close` ends them too. */
  private readonly dedicated = new Set<LegacySession<C>>()
  private readonly sweeper: NodeJS.Timeout

  constructor (upstream: Upstream, log: Logger, onRequest: (call: C, message: JsonRpcMessage) => void) {
    this.upstream = upstream
    this.log = log
    this.onRequest = onRequest
    this.sweeper = setInterval(() => { this.sweep() }, 60_000)
    this.sweeper.unref()
  }

  headers (session: Pick<LegacySession<C>, 'upstreamSessionId' | 'protocolVersion'>): Record<string, string> {
    return {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      [HEADER.sessionId]: session.upstreamSessionId,
      [HEADER.protocolVersion]: session.protocolVersion
    }
  }

  /** Sends messages on a session, as a client of the upstream would. */
  post (session: Pick<LegacySession<C>, 'upstreamSessionId' | 'protocolVersion' | 'caller'>, messages: JsonRpcMessage[], signal?: AbortSignal): Promise<UpstreamAnswer> {
    return this.upstream.send({
      headers: this.headers(session),
      caller: session.caller,
      body: JSON.stringify(messages.length === 1 ? messages[0] : messages),
      messages,
      signal,
      maxBytes: MAX_ANSWER_BYTES
    })
  }

  /** Sends a notification (or responses) whose answer nobody reads; a failure is only logged. */
  tell (session: Pick<LegacySession<C>, 'upstreamSessionId' | 'protocolVersion' | 'caller'>, messages: JsonRpcMessage[]): void {
    this.post(session, messages).then(releaseAnswer, (err: unknown) => {
      this.log.debug({ upstream: this.upstream.name, err }, 'bridged session: a message to the upstream failed')
    })
  }

  /**
   * Lends an idle session of this key, opening one when none is free; with no key (auth off), a
   * new session for this request alone. Caps are checked and places taken before any await.
   */
  async checkout (key: string | undefined, meta: Record<string, unknown>, principal: string | undefined, caller?: Caller): Promise<LegacySession<C>> {
    const sessions = key === undefined ? undefined : this.pool.get(key)
    const idle = sessions?.find((session) => !session.busy && !session.gone)
    if (idle !== undefined) {
      idle.busy = true
      // Pooled by principal: the same user, with the token of their latest request.
      if (caller !== undefined) idle.caller = caller
      return idle
    }
    if (key !== undefined && (sessions?.length ?? 0) + (this.opening.get(key) ?? 0) >= MAX_SESSIONS_PER_KEY) {
      throw new GatewayErrors.UPSTREAM_FULL(this.upstream.name, MAX_SESSIONS_PER_KEY)
    }
    if (this.held >= MAX_BRIDGED_SESSIONS && !this.evictIdle()) throw new GatewayErrors.UPSTREAM_FULL(this.upstream.name, MAX_BRIDGED_SESSIONS)
    this.held++
    if (key !== undefined) this.opening.set(key, (this.opening.get(key) ?? 0) + 1)
    let session: LegacySession<C>
    try {
      session = await this.open(key, meta, principal, caller)
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
    let oldest: LegacySession<C> | undefined
    for (const sessions of this.pool.values()) {
      for (const session of sessions) {
        if (!session.busy && !session.gone && (oldest === undefined || session.lastUsed < oldest.lastUsed)) oldest = session
      }
    }
    if (oldest === undefined) return false
    this.end(oldest)
    return true
  }

  release (session: LegacySession<C>): void {
    session.busy = false
    session.call = undefined
    session.lastUsed = Date.now()
    // A session lent to one anonymous request holds that request's state: it ends with it.
    if (session.key === undefined) this.end(session)
  }

  /** Forgets a session and ends it upstream (best effort). */
  private end (session: LegacySession<C>): void {
    if (session.gone) return
    this.forget(session)
    this.deleteUpstream(session)
  }

  private deleteUpstream (session: Pick<LegacySession<C>, 'upstreamSessionId' | 'protocolVersion' | 'caller'>): void {
    this.upstream.end({ headers: this.headers(session), caller: session.caller }).catch(() => {})
  }

  forget (session: LegacySession<C>): void {
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
  private async open (key: string | undefined, meta: Record<string, unknown>, principal: string | undefined, caller: Caller | undefined): Promise<LegacySession<C>> {
    const initialize: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: 'gw-init',
      method: 'initialize',
      params: { protocolVersion: LEGACY_VERSION, capabilities: meta[META.clientCapabilities] ?? {}, clientInfo: meta[META.clientInfo] ?? GATEWAY_INFO }
    }
    const body = JSON.stringify(initialize)
    let answer: UpstreamAnswer
    try {
      answer = await this.upstream.send({ headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body, messages: [initialize], opensSession: true, principal, caller, maxBytes: MAX_ANSWER_BYTES })
    } catch (err) {
      const named = (err as { upstreamSessionId?: unknown }).upstreamSessionId
      if (typeof named === 'string') this.deleteUpstream({ upstreamSessionId: named, protocolVersion: LEGACY_VERSION, caller })
      throw err
    }
    const upstreamSessionId = answer.sessionId
    let result: Record<string, unknown> | undefined
    try {
      await readMessages(answer, (message) => { if ('result' in message && message.id === initialize.id) result = message.result })
      if (result === undefined || upstreamSessionId === undefined) {
        throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.upstream.name, result === undefined ? 'initialize was answered without a result' : 'initialize was answered without a session')
      }
    } catch (err) {
      // A session id given with a bad answer is a session the upstream holds for nobody: end it.
      if (upstreamSessionId !== undefined) this.deleteUpstream({ upstreamSessionId, protocolVersion: LEGACY_VERSION, caller })
      throw err
    }
    const session: LegacySession<C> = {
      key,
      upstreamSessionId,
      protocolVersion: typeof result.protocolVersion === 'string' ? result.protocolVersion : LEGACY_VERSION,
      initialize: result,
      busy: false,
      call: undefined,
      listeners: new Set(),
      get: new AbortController(),
      gone: false,
      lastUsed: Date.now(),
      caller
    }
    try {
      const initialized: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/initialized' }
      releaseAnswer(await this.post(session, [initialized]))
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
  private async readGet (session: LegacySession<C>): Promise<void> {
    let failures = 0
    while (!session.gone) {
      try {
        const events = await this.upstream.listen({ headers: { ...this.headers(session), accept: 'text/event-stream' }, signal: session.get.signal, caller: session.caller })
        failures = 0
        await readMessages({ kind: 'stream', sessionId: undefined, events }, (message) => {
          if (session.call !== undefined && !session.call.done && isRequest(message)) this.onRequest(session.call, message)
          else for (const listener of session.listeners) listener(message)
        })
      } catch (err) {
        if (session.get.signal.aborted) return
        // No stream of its own (405) is a fine upstream: its requests come on the call's own
        // stream. A forgotten session is taken the same way: servers without a GET route answer
        // 404 too, and a session really gone shows on its next request (a fresh session, once).
        if (NO_STREAM.has((err as { code?: string }).code ?? '')) return
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

  /** Stops the sweeper and every session's GET stream, ending nothing upstream (shutdown by force). */
  stop (): void {
    clearInterval(this.sweeper)
    for (const session of [...this.pool.values()].flat().concat([...this.dedicated])) session.get.abort()
  }

  /** Ends every session upstream, in parallel: one after another, a slow upstream would multiply into the shutdown budget. */
  async close (): Promise<void> {
    clearInterval(this.sweeper)
    await Promise.allSettled([...this.pool.values()].flat().concat([...this.dedicated]).filter((session) => !session.gone).map(async (session) => {
      session.get.abort()
      await this.upstream.end({ headers: this.headers(session), caller: session.caller })
    }))
    this.pool.clear()
    this.dedicated.clear()
  }
}
