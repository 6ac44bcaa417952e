/**
 * One WebSocket client connection as one gateway session. Each text frame is one JSON-RPC
 * message, run through the same exchange as a Streamable HTTP POST (sessions, interceptors,
 * timeouts, metrics, every upstream kind); what comes back goes out as frames, one message each:
 * a whole answer as it is, a streamed one through the exchange's WebSocket sink (`sendFrame`:
 * messages as they come, progress included, never encoded as SSE), and the session's
 * server-to-client stream (the GET stream) the same way, for as long as the socket is open.
 *
 * Framework-free: the socket is anything with `send`, `close` and `bufferedAmount`.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Abort } from '../abort.ts'
import type { Principal } from '../auth/principal.ts'
import { GatewayErrors, toJsonRpcError } from '../errors.ts'
import type { ClientAnswer, ExchangeContext, Forwarder } from '../forwarder.ts'
import type { FrameSink } from '../exchange/answer.ts'
import { resolveSession, type ParsedBody } from '../session/resolve.ts'
import type { InterceptorChain } from '../interceptors/chain.ts'
import { INVALID_REQUEST, MAX_DEPTH, MAX_TOOL_NAME_LENGTH, POISONING_DEFAULTS, errorResponse, hasOversizedToolName, isRequest, nestsDeeperThan, parseMessages, type JsonRpcId, type PoisoningPolicy } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import type { SessionManager } from '../session/manager.ts'
import type { SessionRecord } from '../session/store.ts'

/** Close codes the gateway uses (README, WebSocket transport). */
export const WS_CLOSE = {
  /** The gateway is shutting down; in-flight calls were answered first. */
  GOING_AWAY: 1001,
  /** A binary frame: the transport carries JSON-RPC text only. */
  UNSUPPORTED_DATA: 1003,
  /** A frame larger than the limit (sent by `ws` itself). */
  TOO_BIG: 1009,
  /** The session ended at the gateway (expired, deleted, its upstream gone). */
  SESSION_ENDED: 4000,
  /** The client read too slowly: more than the high-water mark was waiting to be sent. */
  SLOW_READER: 4001
} as const

export interface WsSocket {
  send (text: string): void
  close (code: number, reason: string): void
  /** Drops the connection without a closing handshake. */
  terminate (): void
  readonly bufferedAmount: number
}

/** How long a closing handshake may wait behind unsent data before the socket is dropped. */
const CLOSE_GRACE_MS = 1000

export interface WsConnectionOptions {
  socket: WsSocket
  forwarder: Forwarder
  sessions: SessionManager
  upstream: string
  /** The upgrade request's headers (trace context; the allow-list decides what goes upstream). */
  headers: IncomingHttpHeaders
  principal?: Principal
  interceptors?: () => InterceptorChain | undefined
  routeConfig?: Record<string, unknown>
  log: Logger
  /** Requests one connection may have in flight. */
  maxInFlight: number
  /** Bytes waiting to be sent past which the client is a slow reader and is dropped. */
  highWaterMark: number
  /** Called once the connection holds a session (and when it loses it). */
  onSession?: (id: string | undefined) => void
  /**
   * What prototype keys in a frame meet: pass the host Fastify's `onProtoPoisoning` /
   * `onConstructorPoisoning`, as the HTTP endpoint does.
   * @default both `error` (Fastify's defaults)
   */
  poisoning?: PoisoningPolicy
}

const ACCEPT = 'application/json, text/event-stream'

export class WsConnection {
  sessionId: string | undefined
  /** The session's record as opened (its protocol version is updated in place when negotiated). */
  private session: SessionRecord | undefined
  private inFlight = 0
  private closed = false
  private draining = false
  private readonly aborts = new Set<Abort>()
  /** The GET stream is being read (one per connection). */
  private listening = false
  private readonly options: WsConnectionOptions
  private idle: (() => void) | undefined
  /** Drops a socket whose closing handshake waits too long behind unsent data. */
  private closeGrace: NodeJS.Timeout | undefined

  constructor (options: WsConnectionOptions) {
    this.options = options
  }

  /** Requests in flight now. */
  get busy (): number {
    return this.inFlight
  }

  /** One text frame from the client. Never throws: every failure becomes an error frame. */
  async frame (text: string): Promise<void> {
    if (this.closed) return
    if (nestsDeeperThan(text, MAX_DEPTH)) {
      this.send(JSON.stringify(errorResponse(null, INVALID_REQUEST, `Invalid Request: JSON nested deeper than ${MAX_DEPTH} levels`)))
      return
    }
    const parsed = parseMessages(text, this.options.poisoning ?? POISONING_DEFAULTS)
    if (!parsed.ok) {
      this.send(JSON.stringify(errorResponse(null, parsed.code, parsed.message)))
      return
    }
    if (parsed.batch) {
      this.send(JSON.stringify(errorResponse(null, INVALID_REQUEST, 'Invalid Request: one JSON-RPC message per frame, no batches')))
      return
    }
    const message = parsed.messages[0] as ParsedBody['messages'][number]
    const id: JsonRpcId | null = isRequest(message) ? message.id : null
    // Before any interceptor, rule or authorization matches globs on the name.
    if (hasOversizedToolName(parsed.messages)) {
      this.fail(new GatewayErrors.TOOL_NAME_TOO_LONG(MAX_TOOL_NAME_LENGTH), id)
      return
    }
    const initialize = isRequest(message) && message.method === 'initialize'
    if (this.sessionId === undefined && !initialize) {
      this.fail(new GatewayErrors.SESSION_REQUIRED(), id)
      return
    }
    if (this.draining && id !== null) {
      this.fail(new GatewayErrors.INVALID_REQUEST('The gateway is shutting down: no new requests on this connection'), id)
      return
    }
    if (id !== null && this.inFlight >= this.options.maxInFlight) {
      this.fail(new GatewayErrors.TOO_MANY_IN_FLIGHT(this.options.maxInFlight), id)
      return
    }
    const abort = new Abort()
    this.aborts.add(abort)
    if (id !== null) this.inFlight++
    try {
      // Keys the policy removed must not reach the upstream in the original text either.
      const raw = Buffer.from(parsed.removed === true ? JSON.stringify(message) : text)
      await this.exchange({ raw, messages: parsed.messages, batch: false }, id, abort)
    } catch (err) {
      this.fail(err as Error, id)
    } finally {
      this.aborts.delete(abort)
      if (id !== null) this.inFlight--
      if (this.inFlight === 0) this.idle?.()
    }
  }

  private headers (): IncomingHttpHeaders {
    const headers: IncomingHttpHeaders = { ...this.options.headers, accept: ACCEPT, 'content-type': 'application/json' }
    if (this.sessionId !== undefined) headers[HEADER.sessionId] = this.sessionId
    if (this.session !== undefined) headers[HEADER.protocolVersion] = this.session.protocolVersion
    return headers
  }

  private context (headers: IncomingHttpHeaders, resolution: ExchangeContext['resolution'], abort: Abort): ExchangeContext {
    return {
      headers,
      resolution,
      signal: abort,
      log: this.options.log,
      frames: this.frames,
      interceptors: this.options.interceptors?.(),
      routeConfig: this.options.routeConfig,
      principal: this.options.principal
    }
  }

  private async exchange (body: ParsedBody, id: JsonRpcId | null, abort: Abort): Promise<void> {
    const { forwarder, sessions } = this.options
    const headers = this.headers()
    const resolution = await resolveSession(sessions, headers, body, { upstream: this.options.upstream, principal: this.options.principal?.id })
    const out = await forwarder.post(this.context(headers, resolution, abort), body)
    this.deliver(out, id)
    const message = body.messages[0] as { method?: string }
    if (message.method === 'notifications/initialized' && !this.listening) void this.openGetStream()
  }

  /** An `initialize` of this connection opened its session: it is the connection's from now on. */
  private opened (session: SessionRecord): void {
    if (this.closed) {
      // The client left while the session was being opened: it is nobody's.
      this.options.sessions.end(session.id, 'deleted').catch((err: unknown) => {
        this.options.log.warn({ err, sessionId: session.id }, 'WebSocket: ending the session failed')
      })
      return
    }
    this.sessionId = session.id
    this.session = session
    this.options.onSession?.(session.id)
  }

  /** The exchange's WebSocket sink: one message, one frame. */
  private readonly frames: FrameSink = {
    send: (text) => { this.send(text) },
    sessionOpened: (session) => { this.opened(session) }
  }

  /**
   * An answer the exchange did not send as frames itself: whole messages (one frame each), an
   * upstream's refusal (its JSON-RPC error, with this request's id when it had none), or nothing.
   */
  private deliver (out: ClientAnswer, id: JsonRpcId | null): void {
    if (out.kind === 'framed') return
    if (out.kind === 'messages') {
      if (out.raw !== undefined && out.messages.length === 1 && !out.batch) this.send(out.raw.toString('utf8'))
      else for (const message of out.messages) this.send(JSON.stringify(message))
      return
    }
    if (out.kind !== 'refused') throw new TypeError(`a WebSocket exchange was answered as ${out.kind} SSE`)
    const value = JSON.parse(out.reply.body.toString('utf8')) as unknown
    if (Array.isArray(value)) {
      for (const item of value) this.send(JSON.stringify(item))
      return
    }
    // An error about this request carries its id, so the client can match it.
    const matched = (value as { id?: unknown }).id === null && id !== null ? { ...(value as object), id } : value
    this.send(JSON.stringify(matched))
  }

  /** The session's server-to-client stream, for as long as the socket is open. */
  private async openGetStream (): Promise<void> {
    const { forwarder, sessions } = this.options
    const abort = new Abort()
    this.aborts.add(abort)
    this.listening = true
    try {
      const headers = { ...this.headers(), accept: 'text/event-stream' }
      const resolution = await resolveSession(sessions, headers, undefined, { upstream: this.options.upstream, principal: this.options.principal?.id })
      // Resolves once the stream is over (its messages went out as frames), or with a refusal.
      await forwarder.get(this.context(headers, resolution, abort))
    } catch (err) {
      if (!this.closed) this.options.log.debug({ err, sessionId: this.sessionId }, 'WebSocket: no server-to-client stream')
    } finally {
      this.aborts.delete(abort)
      this.listening = false
    }
  }

  private fail (err: Error, id: JsonRpcId | null): void {
    const { body } = toJsonRpcError(err as Error & { code?: string }, id)
    this.send(JSON.stringify(body))
    if ((err as { code?: string }).code === 'MCP_GW_SESSION_NOT_FOUND' && this.sessionId !== undefined) this.sessionEnded('not found')
  }

  private send (text: string): void {
    if (this.closed) return
    const { socket, highWaterMark } = this.options
    socket.send(text)
    if (socket.bufferedAmount > highWaterMark) {
      this.options.log.warn({ sessionId: this.sessionId, buffered: socket.bufferedAmount }, 'WebSocket client reads too slowly; closing')
      this.close(WS_CLOSE.SLOW_READER, 'slow reader')
    }
  }

  private close (code: number, reason: string): void {
    if (this.closed) return
    const socket = this.options.socket
    socket.close(code, reason)
    void this.end()
    // The close frame waits behind what is still unsent: a reader that stopped reading would
    // hold the socket open, so it is dropped after a grace (cleared once the socket is closed).
    this.closeGrace = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS)
    this.closeGrace.unref()
  }

  /** The session ended at the gateway: tell the client and close. */
  sessionEnded (reason: string): void {
    this.sessionId = undefined
    this.session = undefined
    this.options.onSession?.(undefined)
    this.close(WS_CLOSE.SESSION_ENDED, `session ended: ${reason}`.slice(0, 120))
  }

  /**
   * The socket is gone (or being closed by the gateway): requests in flight are cancelled upstream
   * (their exchanges see the abort), the GET stream stops, and the session ends, as a DELETE would.
   */
  async end (): Promise<void> {
    // Called again when the socket has closed: the grace before dropping it is over.
    if (this.closeGrace !== undefined) clearTimeout(this.closeGrace)
    this.closeGrace = undefined
    if (this.closed) return
    this.closed = true
    // The GET stream's abort stops it too.
    for (const abort of this.aborts) abort.abort()
    const id = this.sessionId
    if (id === undefined) return
    this.sessionId = undefined
    this.session = undefined
    this.options.onSession?.(undefined)
    try {
      const headers = { [HEADER.sessionId]: id }
      const resolution = await resolveSession(this.options.sessions, headers, undefined, { upstream: this.options.upstream, principal: this.options.principal?.id })
      await this.options.forwarder.delete(this.context(headers, resolution, new Abort()))
    } catch (err) {
      if ((err as { code?: string }).code !== 'MCP_GW_SESSION_NOT_FOUND') this.options.log.warn({ err, sessionId: id }, 'WebSocket: ending the session failed')
    }
  }

  /** Shutdown: no new requests; once those in flight are answered (or `timeoutMs`), close 1001. */
  async drain (timeoutMs: number): Promise<void> {
    this.draining = true
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.idle = undefined
          resolve()
        }, timeoutMs)
        // Shutdown's own budget bounds the wait; this timer must not extend the process's life.
        timer.unref()
        this.idle = () => {
          clearTimeout(timer)
          this.idle = undefined
          resolve()
        }
      })
    }
    this.close(WS_CLOSE.GOING_AWAY, 'gateway shutting down')
  }
}
