/**
 * One member upstream's session inside one virtual session: opening it (`initialize`, then
 * `notifications/initialized`), sending it requests under ids of its own and reading their
 * answers, answering its server-to-client requests, and listening to its own stream (2025 GET
 * stream; the era bridge makes a 2026 upstream's `subscriptions/listen` look the same). Whatever
 * the member's kind, this speaks the message-level `Upstream` interface only.
 */
import { Abort } from '../abort.ts'
import { GatewayErrors } from '../errors.ts'
import { isResponse, type JsonRpcMessage, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import { eventMessages, withRaw, type UpstreamAnswer, type UpstreamEvent, type UpstreamEvents } from '../upstream/events.ts'
import { audienceOf } from './list-cache.ts'
import { holdStream } from './member-stream.ts'
import type { ClientHello, LinkWatcher, MemberInit, MemberSpec } from './member-types.ts'
import type { MemberSession } from './virtual-state.ts'

interface Waiter {
  resolve: (response: JsonRpcResponse) => void
  reject: (reason: Error) => void
}

const ACCEPT = 'application/json, text/event-stream'

export class MemberLink {
  readonly spec: MemberSpec
  state: 'new' | 'opening' | 'open' | 'down' | 'closed' = 'new'
  init: MemberInit | undefined
  /** Why it is down, for the coded error its callers get. */
  reason: Error | undefined
  private readonly hello: ClientHello
  private audienceKey: string | undefined
  private readonly watcher: LinkWatcher
  private readonly log: Logger
  private readonly maxBytes: number
  private sessionId: string | undefined
  private version: string | undefined
  private nextId = 0
  private readonly waiting = new Map<string, Waiter>()
  private opening: Promise<void> | undefined
  /** Ends this session's own stream, and every wait, at close. */
  private readonly closing = new AbortController()
  /** Bumped by each open: which session of the member is the current one. */
  private opened = 0
  /** How to stop reading each request's answer (a cancelled one is not read on). */
  private readonly stops = new Map<string, Abort>()
  /**
   * Whether to hold the member's own stream: on one instance, always; on a shared store, while the
   * virtual session's is here (a member takes one stream per session; whoever has the client's has it).
   */
  private wantStream: boolean
  /** Stops the member stream being read now (and marks that one is). */
  private streamStop: AbortController | undefined
  private headersKept: Record<string, string> | undefined

  constructor (spec: MemberSpec, hello: ClientHello, watcher: LinkWatcher, log: Logger, maxBytes: number, wantStream = true) {
    this.spec = spec
    this.wantStream = wantStream
    this.hello = hello
    this.watcher = watcher
    this.log = log
    this.maxBytes = maxBytes
  }

  get name (): string { return this.spec.name }

  /** The client capabilities this session was opened with, as a cache key (list-cache.ts). */
  get audience (): string {
    this.audienceKey ??= audienceOf(this.hello)
    return this.audienceKey
  }

  /** Opens (or re-opens) the member's session; one attempt at a time, bounded by its timeout. */
  open (): Promise<void> {
    this.opening ??= this.openOnce().finally(() => { this.opening = undefined })
    return this.opening
  }

  /** Which session the member is on: a request that met a forgotten session says which it was. */
  get generation (): number { return this.opened }

  /**
   * Re-opens after the member forgot session `generation`; a no-op when another request already
   * did (re-opening again would end the new session under the requests now on it).
   */
  async reopen (generation: number): Promise<void> {
    if (this.state === 'opening') {
      await this.open()
      return
    }
    if (this.state === 'open') {
      if (this.opened === generation) await this.open()
      return
    }
    // Down (or closed): only the channel's retry brings it back, one attempt at a time.
    throw this.downError(this.reason ?? new Error('not open'))
  }

  private async openOnce (): Promise<void> {
    if (this.state === 'closed') throw this.downError(new Error('the virtual session ended'))
    this.state = 'opening'
    if (this.sessionId !== undefined) this.endQuietly(this.sessionId)
    this.sessionId = undefined
    this.version = undefined
    const generation = ++this.opened
    const signal = AbortSignal.timeout(this.spec.timeout)
    try {
      const request: JsonRpcRequest = { jsonrpc: '2.0', id: this.newId(), method: 'initialize', params: { ...this.hello } }
      const response = await this.exchange(request, signal, true)
      if (!('result' in response)) throw new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.name, `initialize failed: ${response.error.message}`)
      const init = response.result as unknown as MemberInit
      this.init = { ...init, capabilities: typeof init.capabilities === 'object' && init.capabilities !== null ? init.capabilities : {} }
      this.version = typeof init.protocolVersion === 'string' ? init.protocolVersion : this.hello.protocolVersion
      // Sent, not waited for: opening costs the member one round trip, not two. Over one channel
      // (stdio, the bridges) it stays in order; an HTTP member that lost it is found by its stream.
      this.notify({ jsonrpc: '2.0', method: 'notifications/initialized' }, signal).catch((err: unknown) => {
        this.log.debug({ upstream: this.name, err }, 'virtual server: notifications/initialized was not taken')
      })
    } catch (err) {
      if (!this.closing.signal.aborted) this.state = 'down'
      this.reason = signal.aborted && !this.closing.signal.aborted ? new Error(`no answer to initialize within ${this.spec.timeout} ms`) : err as Error
      throw this.downError(this.reason)
    }
    if (this.closing.signal.aborted) return
    this.state = 'open'
    this.reason = undefined
    if (this.wantStream) void this.listen(generation)
    // A new session of a member that had one: what it lists may have changed (a restart).
    if (generation > 1) this.watcher.reopened(this)
  }

  /** Whether another instance can use its sessions (not a stdio child's, a connection's, a bridged 2026 one's). */
  get portable (): boolean {
    return this.spec.upstream.kind === 'streamable-http' && this.spec.upstream.era !== '2026'
  }

  /** Takes up a member session another instance opened: at the start, or in place of a forgotten `generation`. */
  adopt (session: MemberSession, generation = 0): boolean {
    if (this.opened !== generation || (this.state !== 'new' && this.state !== 'open') || session.sessionId === this.sessionId) return false
    this.sessionId = session.sessionId
    this.version = session.protocolVersion
    this.init = { ...session.init, capabilities: session.init.capabilities ?? {} }
    this.opened++
    this.state = 'open'
    if (this.wantStream) void this.listen(this.opened)
    return true
  }

  /** The member session as another instance needs it, while there is one. */
  get session (): MemberSession | undefined {
    if (this.state !== 'open' || this.sessionId === undefined || this.init === undefined) return undefined
    return { sessionId: this.sessionId, protocolVersion: this.version ?? this.hello.protocolVersion, init: this.init }
  }

  /** Holds the member's own stream (`true`) or lets it go (`false`): see `wantStream`. */
  stream (wanted: boolean): void {
    this.wantStream = wanted
    if (!wanted) this.streamStop?.abort()
    else if (this.state === 'open' && this.streamStop === undefined) void this.listen(this.opened)
  }

  /** Whether the member offers a kind of list (per its initialize answer). */
  offers (capability: string): boolean {
    return this.state === 'open' && this.init?.capabilities[capability] !== undefined
  }

  /**
   * Sends a request under an id of the member session's own and resolves with its response
   * (with that id). Rejects with a coded error: the session gone (`UPSTREAM_SESSION_GONE`), the
   * member unreachable, or the stream ended unanswered.
   */
  async request (method: string, params: Record<string, unknown> | undefined, signal?: AbortSignal): Promise<JsonRpcResponse> {
    const request: JsonRpcRequest = { jsonrpc: '2.0', id: this.newId(), method }
    if (params !== undefined) request.params = params
    return await this.exchange(request, signal, false)
  }

  /**
   * A client's request, sent under the member's own id (`onSent` learns it, for cancellation). The
   * request is the link's from here: its id is replaced (callers hand over a copy made for it).
   */
  async forward (request: JsonRpcRequest, onSent: (id: string) => void): Promise<JsonRpcResponse> {
    const id = this.newId()
    request.id = id
    onSent(id)
    return await this.exchange(request, undefined, false)
  }

  /** A notification (or the client's answer to one of the member's requests): no answer expected. */
  async notify (message: JsonRpcMessage, signal?: AbortSignal): Promise<void> {
    const answer = await this.spec.upstream.send({ headers: this.headers(), body: JSON.stringify(message), messages: [message], signal, maxBytes: this.maxBytes })
    if (answer.kind === 'stream') answer.events.destroy()
  }

  /** Stops waiting for a request's answer (the client cancelled it): whatever comes is dropped. */
  abandon (id: string): void {
    this.waiting.get(id)?.reject(Object.assign(new Error('cancelled'), { name: 'AbortError' }))
    this.waiting.delete(id)
    this.stops.get(id)?.abort()
  }

  /** The member cannot serve (a call found it unreachable): down, until a retry re-opens it. */
  markDown (reason: Error, generation: number): void {
    if (this.state === 'open' && this.opened === generation) this.lose(reason)
  }

  /** Ends everything waiting on the member, and its session when `end` (not when only this instance lets go). */
  close (end = true): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.closing.abort()
    const reason = this.downError(new Error('the virtual session ended'))
    for (const waiter of this.waiting.values()) waiter.reject(reason)
    this.waiting.clear()
    for (const stop of [...this.stops.values()]) stop.abort()
    if (this.sessionId !== undefined && end) this.endQuietly(this.sessionId)
  }

  private downError (reason: Error): Error {
    return Object.assign(new GatewayErrors.MEMBER_DOWN(this.name, this.spec.server, reason.message), { member: this.name })
  }

  private newId (): string {
    return `vm${++this.nextId}`
  }

  /** The member session's request headers, built once per session (upstreams copy, never change, them). */
  private headers (): Record<string, string> {
    const kept = this.headersKept
    if (kept !== undefined && kept[HEADER.sessionId] === this.sessionId && kept[HEADER.protocolVersion] === this.version) return kept
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: ACCEPT }
    if (this.sessionId !== undefined) headers[HEADER.sessionId] = this.sessionId
    if (this.version !== undefined) headers[HEADER.protocolVersion] = this.version
    this.headersKept = headers
    return headers
  }

  /**
   * Sends one request and waits for its response. `signal` (the caller's) and the link's own close
   * both stop it; each request gets its own signal for the upstream, and its listeners are removed
   * when it settles (on a session-long signal they would pile up, one per request).
   */
  private async exchange (request: JsonRpcRequest, signal: AbortSignal | undefined, opensSession: boolean): Promise<JsonRpcResponse> {
    if (this.state === 'closed') throw this.downError(new Error('the virtual session ended'))
    const id = request.id as string
    // Aborted by the caller's signal, by abandon() (a cancel) and by close() (through `stops`).
    // The light emitter, not an AbortController: one per call, and undici takes either.
    const local = new Abort()
    this.stops.set(id, local)
    // Only requests with a caller's signal (opening, lists) need a listener on it; calls have none.
    const onAbort = signal === undefined
      ? undefined
      : (): void => {
          const waiter = this.waiting.get(id)
          this.waiting.delete(id)
          local.abort()
          waiter?.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
        }
    const answered = new Promise<JsonRpcResponse>((resolve, reject) => { this.waiting.set(id, { resolve, reject }) })
    // Rejected early (lose(), close()) while the send is still out: awaited below, never unhandled.
    answered.catch(() => {})
    if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (onAbort !== undefined && signal?.aborted === true) {
        onAbort()
        return await answered
      }
      let answer: UpstreamAnswer
      try {
        answer = await this.spec.upstream.send({ headers: this.headers(), body: JSON.stringify(request), messages: [request], opensSession, signal: local, maxBytes: this.maxBytes })
      } catch (err) {
        this.waiting.get(id)?.reject(err as Error)
        this.waiting.delete(id)
        return await answered
      }
      if (opensSession) {
        this.sessionId = answer.sessionId
        // Closed while the session opened: it is ended here, since close() could not see it.
        if (this.closing.signal.aborted && answer.sessionId !== undefined) this.endQuietly(answer.sessionId)
      }
      if (answer.kind === 'stream') {
        const events = answer.events
        if (local.aborted) events.destroy()
        else local.once('abort', () => { events.destroy() })
        this.read(events, id)
        return await answered
      }
      if (answer.kind === 'single') {
        // A lone response keeps its bytes: the virtual session may pass them on with its own id.
        if (!answer.batch && answer.raw !== undefined && answer.messages.length === 1) withRaw(answer.messages[0] as JsonRpcMessage, answer.raw)
        for (const message of answer.messages) this.receive(message)
      }
      // A whole answer without the response (or none at all) is the member's fault.
      const waiter = this.waiting.get(id)
      if (waiter !== undefined) {
        this.waiting.delete(id)
        waiter.reject(new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.name, `${request.method} was answered without its response`))
      }
      return await answered
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
      this.stops.delete(id)
    }
  }

  private read (events: UpstreamEvents, id: string): void {
    events.read((event) => {
      this.receiveEvent(event)
      // The answer is in: nothing more belongs to this request.
      if (!this.waiting.has(id)) events.destroy()
    }, (error) => {
      const waiter = this.waiting.get(id)
      if (waiter === undefined) return
      this.waiting.delete(id)
      const code = (error as { code?: string } | undefined)?.code
      waiter.reject(code !== undefined ? error as Error : new GatewayErrors.UPSTREAM_STREAM_ENDED(this.name))
    })
  }

  private receiveEvent (event: UpstreamEvent): void {
    for (const message of eventMessages(event)) this.receive(message)
  }

  private receive (message: JsonRpcMessage): void {
    if (typeof message !== 'object' || message === null) return
    if (isResponse(message)) {
      const id = String(message.id)
      const waiter = this.waiting.get(id)
      if (waiter === undefined) return
      this.waiting.delete(id)
      waiter.resolve(message)
      return
    }
    if (typeof (message as { method?: unknown }).method !== 'string') return
    this.watcher.message(this, message)
  }

  /** The member session's own stream (member-stream.ts), until it is let go of or the session ends. */
  private async listen (generation: number): Promise<void> {
    this.streamStop?.abort()
    const stop = new AbortController()
    this.streamStop = stop
    try {
      await holdStream({
        name: this.name,
        log: this.log,
        current: () => this.opened === generation && this.state === 'open',
        listen: async (signal) => await this.spec.upstream.listen({ headers: this.headers(), signal }),
        receive: (event) => { this.receiveEvent(event) },
        forgotten: () => { this.reopen(generation).catch((failed: unknown) => { if (this.state !== 'closed') this.lose(this.reason ?? failed as Error) }) },
        lost: (err) => { this.lose(err) }
      }, AbortSignal.any([this.closing.signal, stop.signal]))
    } finally {
      if (this.streamStop === stop) this.streamStop = undefined
    }
  }

  private lose (reason: Error): void {
    this.state = 'down'
    this.reason = reason
    const gone = this.downError(reason)
    for (const waiter of this.waiting.values()) waiter.reject(gone)
    this.waiting.clear()
    for (const stop of [...this.stops.values()]) stop.abort()
    this.watcher.lost(this, reason)
  }

  private endQuietly (sessionId: string): void {
    const headers: Record<string, string> = { [HEADER.sessionId]: sessionId }
    if (this.version !== undefined) headers[HEADER.protocolVersion] = this.version
    this.spec.upstream.end({ headers }).catch((err: unknown) => {
      this.log.debug({ upstream: this.name, err }, 'virtual server: ending a member session failed')
    })
  }
}
