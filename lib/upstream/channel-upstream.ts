/**
 * An upstream reached over message channels (stdio children, legacy HTTP+SSE connections, the
 * 2026 bridge's channels), at the message level: a client's messages go to the session's channel
 * and the answer comes back as messages, and the session's own stream is a flow of messages too,
 * with no HTTP in between.
 *
 * A request with no session that opens none is a stateless (2026-07-28) client's: the era bridge
 * (legacy-upstream-for-modern-clients.ts) holds sessions here on its behalf. Per-session mode
 * (the default) opens one channel per upstream session: a stdio server serves one client, and
 * sharing it leaks one client's state into another's. Shared mode runs one channel
 * for every session, for servers known to be stateless: request ids and progress tokens are
 * rewritten so sessions never see each other's answers, the first `initialize` is the channel's
 * and later ones are answered from its result, and server-to-client requests are refused (a
 * shared process has no one client to ask).
 *
 * An answer waits for its first message: a lone response is the whole answer (the client gets
 * JSON, cheapest for everyone), anything else (progress, a server request) makes it a flow of
 * events. Messages from the upstream that answer nothing (notifications, server requests) go to
 * the newest answer still open (over stdio they most likely belong to the call in progress),
 * else to the session's GET stream, else they wait for one, up to `maxQueued`.
 */
import type { Caller } from '../upstream-auth/credentials.ts'
import { randomUUID } from 'node:crypto'
import { GatewayErrors } from '../errors.ts'
import { isRequest, isResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import type { MessageChannel, OpenChannel } from './channel.ts'
import { singleAnswer, UpstreamEvents, type UpstreamAnswer } from './events.ts'
import type { Upstream, UpstreamKind, UpstreamSend, UpstreamSessionRequest } from './types.ts'
import type { DropReason } from '../relay/pending.ts'
import type { ChildrenReport } from './stdio-pool.ts'
import { Answer, ChannelSession, forgetShared, progressToken, type SharedChannel } from './channel-session.ts'
import { fromShared, toShared } from './shared-channel.ts'
import { LegacyUpstreamForModernClients } from './legacy-upstream-for-modern-clients.ts'

export { Answer } from './channel-session.ts'

export interface ChannelUpstreamOptions {
  name: string
  kind: Exclude<UpstreamKind, 'streamable-http'>
  open: OpenChannel
  /** One channel for every session (stateless servers only). @default false */
  shared?: boolean
  /** Most channels open at once (per-session mode); more sessions get 503. @default 100 */
  maxChannels?: number
  /** Messages kept for a GET stream no one has opened yet; the oldest go first. @default 1000 */
  maxQueued?: number
  /**
   * A backstop for sessions the gateway forgot without telling this upstream (another instance
   * ended a shared session record): a session with no request and no open GET stream for this
   * long has its channel closed. 0: never.
   * @default 3600000 ms
   */
  idleMs?: number
  /**
   * A session this instance does not hold, opened by another on a shared store: its channel, or
   * undefined (the session is gone). Only virtual servers can (their members' sessions are in the
   * store); a stdio child or a connection stays where it was opened.
   */
  adopt?: (id: string, principal: string | undefined) => Promise<MessageChannel | undefined>
  /** Resolves when the upstream can serve. */
  probe: () => Promise<void>
  /** Frees what the channels share (a connection pool, spare children), after every channel is closed. */
  release?: (force: boolean) => Promise<void>
  /** Starts what is kept ready ahead of sessions (stdio spares). */
  warm?: () => void
  /** The channels' processes, for metrics (stdio). */
  children?: () => ChildrenReport
  log: Logger
}

export const CHANNEL_DEFAULTS = { maxChannels: 100, maxQueued: 1000, idleMs: 3_600_000 } as const

export class ChannelUpstream implements Upstream {
  readonly era = '2025' as const
  readonly name: string
  readonly kind: ChannelUpstreamOptions['kind']
  private readonly options: ChannelUpstreamOptions
  private readonly maxChannels: number
  private readonly maxQueued: number
  private readonly log: Logger
  private readonly sessions = new Map<string, ChannelSession>()
  private shared: SharedChannel | undefined
  private opening = 0
  private closing = false
  private onDrop: ((reason: DropReason) => void) | undefined
  private stateless: LegacyUpstreamForModernClients | undefined
  /** The channels' processes (stdio), for metrics. */
  readonly children: (() => ChildrenReport) | undefined
  /** Starts what is kept ready ahead of sessions (stdio spares), once the server is ready. */
  readonly warm: (() => void) | undefined

  constructor (options: ChannelUpstreamOptions) {
    this.name = options.name
    this.kind = options.kind
    this.options = options
    this.maxChannels = options.maxChannels ?? CHANNEL_DEFAULTS.maxChannels
    this.maxQueued = options.maxQueued ?? CHANNEL_DEFAULTS.maxQueued
    this.log = options.log
    this.children = options.children
    this.warm = options.warm
    const idleMs = options.idleMs ?? CHANNEL_DEFAULTS.idleMs
    if (idleMs > 0) {
      this.reaper = setInterval(() => { this.reap(idleMs) }, Math.min(idleMs / 4, 60_000))
      this.reaper.unref()
    }
  }

  /** The upstream session `id` (or, for `shared`, any session) has a request in flight. */
  busy (id: string): boolean {
    const busy = (session: ChannelSession | undefined): boolean => (session?.live.size ?? 0) > 0
    return id === 'shared' ? [...this.sessions.values()].some(busy) : busy(this.sessions.get(id))
  }

  watchDrops (onDrop: (reason: DropReason) => void): void {
    this.onDrop = onDrop
  }

  /** Upstream sessions open now (each with its own channel, unless shared). */
  get size (): number {
    return this.sessions.size
  }

  private readonly reaper: NodeJS.Timeout | undefined

  private reap (idleMs: number): void {
    const before = Date.now() - idleMs
    for (const session of [...this.sessions.values()]) {
      if (session.lastUsed >= before || session.outlet.open || session.live.size > 0) continue
      this.log.info({ upstream: this.name, upstreamSessionId: session.id }, 'closing an upstream session idle past its limit')
      this.endSession(session, new GatewayErrors.UPSTREAM_EXITED(this.name, 'the session was idle too long'))
    }
  }

  /** The session's own stream: what the upstream sends outside any answer. */
  async listen (req: UpstreamSessionRequest): Promise<UpstreamEvents> {
    const session = await this.find(req)
    const signal = req.signal
    // Stopped before it opened (a reader stopped while it waited to reconnect): nothing to attach.
    if (signal?.aborted === true) throw Object.assign(new Error('the stream was stopped before it opened'), { name: 'AbortError' })
    if (session.outlet.open) throw new GatewayErrors.STREAM_CONFLICT()
    const events = session.outlet.attach()
    const channel = session.channel
    channel.streaming?.(true)
    const onAbort = (): void => { events.destroy() }
    if (signal !== undefined) {
      if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true })
      else signal.once('abort', onAbort)
    }
    events.onFinish(() => {
      if (signal !== undefined && 'addEventListener' in signal) signal.removeEventListener('abort', onAbort)
      else signal?.off('abort', onAbort)
      channel.streaming?.(false)
    })
    return events
  }

  /** Ends the session: its channel is closed (per-session mode), or it leaves the shared one. */
  async end (req: UpstreamSessionRequest): Promise<void> {
    const session = await this.find(req)
    // Over for everyone, not only on this instance (a virtual session ends its members' sessions).
    session.channel.terminate?.()
    this.endSession(session, new GatewayErrors.UPSTREAM_EXITED(this.name, 'the session was deleted'))
  }

  /** The session a request names; one it does not name, or that is gone, is a coded error. */
  private async find (req: UpstreamSessionRequest, principal?: string): Promise<ChannelSession> {
    const sessionId = req.headers[HEADER.sessionId]
    if (sessionId === undefined) throw new GatewayErrors.UPSTREAM_NEEDS_SESSION(this.name, this.kind)
    const session = this.sessions.get(sessionId) ?? await this.adopt(sessionId, principal)
    if (session === undefined) throw new GatewayErrors.UPSTREAM_SESSION_GONE()
    session.lastUsed = Date.now()
    return session
  }

  /** A session another instance opened (a virtual session on a shared store), taken up here. */
  private async adopt (id: string, principal: string | undefined): Promise<ChannelSession | undefined> {
    const adopt = this.options.adopt
    if (adopt === undefined || this.closing) return undefined
    let adopting = this.adopting.get(id)
    if (adopting === undefined) {
      adopting = adopt(id, principal).then((channel) => channel === undefined ? undefined : this.wire(id, channel))
        .finally(() => this.adopting.delete(id))
      this.adopting.set(id, adopting)
    }
    return await adopting
  }

  private readonly adopting = new Map<string, Promise<ChannelSession | undefined>>()

  async send (req: UpstreamSend): Promise<UpstreamAnswer> {
    const messages = req.messages
    const sessionId = req.headers[HEADER.sessionId]
    let session: ChannelSession
    let opened: string | undefined
    if (sessionId === undefined) {
      const initialize = messages.find((message) => isRequest(message) && message.method === 'initialize') as JsonRpcRequest | undefined
      if (initialize === undefined) {
        // A stateless (2026-07-28) client: the bridge holds sessions here on its behalf.
        if (this.closing) throw new GatewayErrors.UPSTREAM_UNAVAILABLE(this.name)
        this.stateless ??= new LegacyUpstreamForModernClients(this, this.log)
        return await this.stateless.send(req)
      }
      session = await this.openSession(req.principal)
      opened = session.id
      const shared = this.shared
      if (shared !== undefined && shared.initialize !== undefined) {
        // A later client of a shared channel: the channel's first initialize answers it too.
        try {
          const result = await shared.initialize
          return singleAnswer({ jsonrpc: '2.0', id: initialize.id, result }, opened)
        } catch (err) {
          this.endSession(session, err as Error)
          throw err
        }
      }
    } else {
      // Held here (the common case): no await, so an abort right after the call is still heard.
      const held = this.sessions.get(sessionId)
      if (held !== undefined) held.lastUsed = Date.now()
      session = held ?? await this.find(req, req.principal)
    }

    const ids: JsonRpcId[] = []
    for (const message of messages) if (isRequest(message)) ids.push(message.id)
    if (ids.length === 0) {
      for (const message of messages) {
        // A later client's `initialized` is the shared channel's business only once.
        if (this.shared !== undefined && 'method' in message && message.method === 'notifications/initialized') continue
        await this.deliver(session, message, req.caller)
      }
      return { kind: 'accepted', sessionId: opened }
    }

    return await new Promise<UpstreamAnswer>((resolve, reject) => {
      const answer = new Answer(ids, opened, resolve, (gone) => session.forget(gone))
      for (const message of messages) {
        if (!isRequest(message)) continue
        session.answers.set(message.id, answer)
        const token = progressToken(message)
        if (token !== undefined) {
          answer.tokens.push(token)
          session.progress.set(token, answer)
        }
      }
      session.live.add(answer)
      const signal = req.signal
      if (signal !== undefined) {
        const onAbort = (): void => {
          answer.abort()
          reject(new Error('aborted'))
        }
        if ('addEventListener' in signal) signal.addEventListener('abort', onAbort, { once: true })
        else signal.once('abort', onAbort)
        // Aborted while the session was being taken up from the store.
        if (signal.aborted) onAbort()
      }
      const initialize = sessionId === undefined ? messages.find((message) => isRequest(message) && message.method === 'initialize') as JsonRpcRequest | undefined : undefined
      if (initialize !== undefined && this.shared !== undefined) this.shared.initialize = this.sharedInitialize(answer, initialize.id)
      // One message (the common case) without a loop's async frame around it.
      const delivered = messages.length === 1 ? this.deliver(session, messages[0] as JsonRpcMessage, req.caller) : this.deliverAll(session, messages, req.caller)
      delivered.catch((err: unknown) => {
        answer.fail(err as Error)
        session.forget(answer)
      })
    })
  }

  /** The first client's initialize result, kept for the shared channel's later clients. */
  private sharedInitialize (answer: Answer, id: JsonRpcId): Promise<Record<string, unknown>> {
    const result = new Promise((resolve, reject) => {
      const deliver = answer.deliver.bind(answer)
      answer.deliver = (message) => {
        if (isResponse(message) && message.id === id) {
          if ('result' in message) resolve(message.result)
          else reject(new GatewayErrors.UPSTREAM_BAD_RESPONSE(this.name, `initialize failed: ${message.error.message}`))
        }
        deliver(message)
      }
    }).then(undefined, (err: unknown) => {
      if (this.shared !== undefined) this.shared.initialize = undefined
      throw err
    }) as Promise<Record<string, unknown>>
    // The first client got its own answer; later ones, if any, await this.
    result.catch(() => {})
    return result
  }

  private async deliverAll (session: ChannelSession, messages: readonly JsonRpcMessage[], caller: Caller | undefined): Promise<void> {
    for (const message of messages) await this.deliver(session, message, caller)
  }

  /** Hands one client message to the session's channel (rewritten for a shared one). */
  private async deliver (session: ChannelSession, message: JsonRpcMessage, caller: Caller | undefined): Promise<void> {
    if (session.gone !== undefined) throw session.gone
    const shared = this.shared
    if (shared === undefined) {
      await session.channel.send(message, caller)
      return
    }
    await shared.channel.send(toShared(shared, session, message), caller)
  }

  private async openSession (principal: string | undefined): Promise<ChannelSession> {
    if (this.closing) throw new GatewayErrors.UPSTREAM_UNAVAILABLE(this.name)
    const id = randomUUID()
    if (this.options.shared === true) {
      const shared = this.shared ?? await this.openShared()
      const session = new ChannelSession(id, shared.channel, this.maxQueued)
      shared.sessions.add(session)
      this.sessions.set(id, session)
      return session
    }
    if (this.sessions.size + this.opening + this.stopping.size >= this.maxChannels) throw new GatewayErrors.UPSTREAM_FULL(this.name, this.maxChannels)
    this.opening++
    let channel: MessageChannel
    try {
      channel = await this.options.open(id, principal)
    } finally {
      this.opening--
    }
    return this.wire(id, channel)
  }

  private wire (id: string, channel: MessageChannel): ChannelSession {
    const session = new ChannelSession(id, channel, this.maxQueued)
    channel.onmessage = (message) => { session.route(message, this.log, this.name, this.onDrop) }
    channel.onclose = (reason) => { this.dropSession(session, reason) }
    this.sessions.set(id, session)
    return session
  }

  private opened: Promise<SharedChannel> | undefined

  private async openShared (): Promise<SharedChannel> {
    this.opened ??= this.options.open('shared').then((channel) => {
      const shared: SharedChannel = { channel, sessions: new Set(), initialize: undefined, requests: new Map(), tokens: new Map(), next: 1 }
      channel.onmessage = (message) => { fromShared(shared, message, this.name, this.log, this.onDrop) }
      channel.onclose = (reason) => {
        if (this.shared === shared) this.shared = undefined
        this.opened = undefined
        for (const session of shared.sessions) this.dropSession(session, reason)
      }
      this.shared = shared
      return shared
    }).finally(() => { if (this.shared === undefined) this.opened = undefined })
    return await this.opened
  }

  private dropSession (session: ChannelSession, reason: Error): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id)
    const shared = this.shared
    if (shared !== undefined && shared.sessions.delete(session)) {
      // What the session still had in flight on the shared channel goes with it.
      for (const [own, entry] of shared.requests) if (entry.session === session) forgetShared(shared, own)
      for (const [own, entry] of shared.tokens) if (entry.session === session) shared.tokens.delete(own)
    }
    session.end(reason)
  }

  /** Channels being stopped: a DELETE does not wait for a child to exit, but close() does. */
  private readonly stopping = new Set<Promise<void>>()

  private endSession (session: ChannelSession, reason: Error): void {
    this.dropSession(session, reason)
    if (this.options.shared === true) return
    const stopped = session.channel.close().finally(() => this.stopping.delete(stopped))
    this.stopping.add(stopped)
  }

  async probe (): Promise<void> {
    await this.options.probe()
  }

  async close (): Promise<void> {
    this.closing = true
    clearInterval(this.reaper)
    // Its sessions are this upstream's: ended (and their calls cancelled) before the channels close.
    await this.stateless?.close()
    const reason = new GatewayErrors.UPSTREAM_EXITED(this.name, 'the gateway is shutting down')
    const channels = new Set<MessageChannel>()
    for (const session of this.sessions.values()) {
      channels.add(session.channel)
      this.dropSession(session, reason)
    }
    if (this.shared !== undefined) channels.add(this.shared.channel)
    await Promise.all([...[...channels].map(async (channel) => await channel.close()), ...this.stopping])
    await this.options.release?.(false)
  }

  async destroy (): Promise<void> {
    this.closing = true
    clearInterval(this.reaper)
    this.stateless?.destroy()
    for (const session of this.sessions.values()) session.channel.kill()
    this.shared?.channel.kill()
    await this.options.release?.(true)
  }
}
