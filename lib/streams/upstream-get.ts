/**
 * The upstream reader behind a session's GET stream: opened once per session (on one instance),
 * it keeps reading while the client is away, so nothing the upstream sends meanwhile is lost, and
 * re-opens the upstream stream when it drops, from the upstream's own last event id. Its requests
 * are made for the principal that opened the GET (per-user upstream `auth`).
 */
import type { JsonRpcMessage } from '../jsonrpc.ts'
import type { Logger } from '../logger.ts'
import { HEADER } from '../protocol.ts'
import type { SessionRecord } from '../session/store.ts'
import type { UpstreamEvents } from '../upstream/events.ts'
import type { Upstream } from '../upstream/types.ts'
import { sessionCaller, type Caller } from '../upstream-auth/credentials.ts'
import type { RefusedAnswer } from '../exchange/answer.ts'
import type { StreamHub } from './hub.ts'
import type { LiveStream } from './live-stream.ts'
import { pumpEvents } from './pump.ts'
import { delay, GET_REOPEN_TRIES, retryDelay } from './retry.ts'

export interface GetReaderDeps {
  hub: StreamHub
  upstream: Upstream
  /** An upstream's refusal, as the client gets it. */
  failure: (err: unknown, session: SessionRecord) => Promise<RefusedAnswer>
  /** Ends a session whose upstream session is gone. */
  gone: (session: SessionRecord) => Promise<void>
  /** Sees each message of the stream (metrics). */
  observe: ((message: JsonRpcMessage, session?: string) => void) | undefined
}

/** One reader's state: whose stream, for whom, and whether it was stopped. */
interface Reading {
  session: SessionRecord
  stream: LiveStream
  log: Logger
  caller: Caller | undefined
  from: string | undefined
  controller: AbortController
  stopped: boolean
}

export class UpstreamGetReader {
  private readonly hub: StreamHub
  private readonly upstream: Upstream
  private readonly failure: GetReaderDeps['failure']
  private readonly gone: GetReaderDeps['gone']
  private readonly observe: GetReaderDeps['observe']

  constructor (deps: GetReaderDeps) {
    this.hub = deps.hub
    this.upstream = deps.upstream
    this.failure = deps.failure
    this.gone = deps.gone
    this.observe = deps.observe
  }

  /**
   * Starts the upstream reader feeding a session's GET stream. It keeps reading while the client
   * is away (so nothing sent meanwhile is lost) and re-opens the upstream stream when it drops,
   * from the upstream's own last event id when it gave one.
   */
  async start (session: SessionRecord, stream: LiveStream, clientHeaders: Record<string, string | string[] | undefined>, log: Logger, from?: string, caller: Caller | undefined = sessionCaller(session)): Promise<RefusedAnswer | undefined> {
    const reader: Reading = { session, stream, log, caller, from, controller: new AbortController(), stopped: false }
    const headers = this.getHeaders(session, from)
    const accept = clientHeaders.accept
    if (typeof accept === 'string') headers.accept = accept
    const stop = (): void => {
      reader.stopped = true
      reader.controller.abort()
    }
    // Registered before the upstream answers: an upstream slow to send its stream's headers must
    // not keep a reader that shutdown or the session's end cannot stop (it would hold the close).
    this.hub.setUpstreamGet(session.id, stop)
    if (reader.stopped) return undefined
    let first: UpstreamEvents
    try {
      first = await this.openUpstream(session, headers, from, reader.controller.signal, log, caller)
    } catch (err) {
      this.hub.clearUpstreamGet(session.id, stop)
      if (reader.stopped) return undefined
      // A client that joined the stream while it opened would wait on a reader that never came.
      stream.writer?.end('done', this.hub.options.retryMs)
      return await this.failure(err, session)
    }
    log.debug({ from }, 'opened the upstream GET stream')
    // Stopped while it opened (its session ended, or the gateway closed): nobody reads it.
    if (reader.stopped) {
      first.destroy()
      return undefined
    }
    this.read(reader, first).catch((err: unknown) => {
      // Ending the session needs the store, which may be away: logged, never an unhandled rejection.
      log.error({ upstream: this.upstream.name, err }, 'the upstream GET reader failed')
    })
    return undefined
  }

  /** Reads the upstream stream into the session's, re-opening it when it drops, until stopped. */
  private async read (reader: Reading, first: UpstreamEvents): Promise<void> {
    const { session, stream, log, caller, controller } = reader
    const observe = this.observe
    const onMessage = observe === undefined ? undefined : (message: JsonRpcMessage): void => { observe(message, session.id) }
    let source = first
    let failures = 0
    let lastUpstreamEventId = reader.from
    for (;;) {
      const result = await pumpEvents({ source, stream, log, onMessage, filter: stream.filter })
      lastUpstreamEventId = result.lastUpstreamEventId ?? lastUpstreamEventId
      if (reader.stopped) return
      let next: UpstreamEvents | undefined | 'gone'
      while (next === undefined && failures < GET_REOPEN_TRIES && !reader.stopped) {
        await delay(retryDelay(failures))
        failures++
        next = await this.upstreamGet(session, lastUpstreamEventId, log, controller.signal, caller)
      }
      // Stopped while it reconnected: a stream opened meanwhile is nobody's.
      if (reader.stopped && next !== undefined && next !== 'gone') next.destroy()
      if (next === undefined || next === 'gone' || reader.stopped) {
        if (!reader.stopped) {
          log.warn({ upstream: this.upstream.name }, 'upstream GET stream lost')
          this.hub.setUpstreamGet(session.id, undefined)
          await stream.release(false)
          stream.writer?.end('done', this.hub.options.retryMs)
          // The upstream no longer knows the session: end ours, so the client re-initialises.
          if (next === 'gone') await this.gone(session)
        }
        return
      }
      failures = 0
      source = next
    }
  }

  private getHeaders (session: SessionRecord, lastEventId: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { accept: 'text/event-stream', [HEADER.protocolVersion]: session.protocolVersion }
    if (session.upstreamSessionId !== null) headers[HEADER.sessionId] = session.upstreamSessionId
    if (lastEventId !== undefined) headers[HEADER.lastEventId] = lastEventId
    return headers
  }

  /**
   * The session's upstream stream, from `from` (an upstream event id) when given; an upstream that
   * cannot resume from there (any refusal but "no such session") is opened afresh: what it sent
   * meanwhile is lost.
   */
  private async openUpstream (session: SessionRecord, headers: Record<string, string>, from: string | undefined, signal: AbortSignal, log: Logger, caller: Caller | undefined): Promise<UpstreamEvents> {
    try {
      return await this.upstream.listen({ headers, signal, caller })
    } catch (err) {
      const status = (err as { upstreamStatus?: number }).upstreamStatus
      if (from === undefined || status === undefined || status === 404) throw err
      log.warn({ status }, 'upstream refused to resume the GET stream; opened it afresh')
      return await this.upstream.listen({ headers: this.getHeaders(session, undefined), signal, caller })
    }
  }

  /** One upstream GET (also a POST stream's resumption); undefined when it could not be opened. */
  async upstreamGet (session: SessionRecord, lastEventId: string | undefined, log: Logger, signal?: AbortSignal, caller: Caller | undefined = sessionCaller(session)): Promise<UpstreamEvents | undefined | 'gone'> {
    try {
      return await this.upstream.listen({ headers: this.getHeaders(session, lastEventId), signal, caller })
    } catch (err) {
      const failed = err as { code?: string, upstreamStatus?: number }
      if (failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE' && session.upstreamSessionId !== null) return 'gone'
      if (failed.upstreamStatus !== undefined) log.debug({ status: failed.upstreamStatus }, 'upstream refused to resume a stream')
      else log.debug({ err }, 'upstream stream reconnect failed')
    }
    return undefined
  }
}
