/**
 * Heartbeat: sessions idle longer than an interval get an MCP `ping` sent to their upstream
 * session. An upstream that no longer knows the session (404), or fails `maxFailures` pings in a
 * row, ends the gateway session, so its client gets 404 and re-initialises instead of an opaque
 * error on its next call.
 */
import { HEADER } from './protocol.ts'
import type { JsonRpcMessage } from './jsonrpc.ts'
import type { Logger } from './logger.ts'
import type { SessionManager } from './session/manager.ts'
import type { SessionRecord } from './session/store.ts'
import { releaseAnswer } from './upstream/events.ts'
import type { Upstream } from './upstream/types.ts'
import { sessionCaller } from './upstream-auth/credentials.ts'

/** A ping's answer is tiny: anything bigger is not one. */
const PING_ANSWER_BYTES = 64 * 1024

export interface HeartbeatOptions {
  /**
   * Sessions idle this long are pinged, at most once per interval. 0 turns the heartbeat off.
   * @default 120000
   */
  intervalMs: number
  /**
   * Failed pings in a row that end a session (a 404 ends it at once).
   * @default 3
   */
  maxFailures: number
}

export const HEARTBEAT_DEFAULTS: HeartbeatOptions = { intervalMs: 120_000, maxFailures: 3 }

/** Codes of a ping the gateway did not send: it could not get the session user's token. */
const NOT_ASKED = new Set(['MCP_GW_UPSTREAM_TOKEN', 'MCP_GW_CONSENT_REQUIRED'])

/** Pings in flight at once, so a sweep over many idle sessions does not flood the upstream. */
const CONCURRENCY = 8
const BATCH = 1000

export class Heartbeat {
  private readonly sessions: SessionManager
  private readonly upstream: Upstream
  private readonly options: HeartbeatOptions
  private readonly log: Logger
  private readonly failures = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private counter = 0

  constructor (sessions: SessionManager, upstream: Upstream, options: HeartbeatOptions, log: Logger) {
    this.sessions = sessions
    this.upstream = upstream
    this.options = options
    this.log = log
    sessions.onEnd((record) => { this.failures.delete(record.id) })
  }

  start (): void {
    if (this.options.intervalMs === 0) return
    this.timer = setInterval(() => {
      if (this.running === undefined) this.running = this.beat().finally(() => { this.running = undefined })
    }, this.options.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  /** One round: pings every session of this upstream idle for longer than the interval. */
  async beat (): Promise<void> {
    let idle: SessionRecord[]
    try {
      idle = await this.sessions.store.listExpired(Date.now() - this.options.intervalMs, 0, BATCH)
    } catch (err) {
      this.log.warn({ err }, 'heartbeat could not list idle sessions')
      return
    }
    const mine = idle.filter((record) => record.upstream === this.upstream.name && record.upstreamSessionId !== null)
    for (let i = 0; i < mine.length; i += CONCURRENCY) {
      await Promise.all(mine.slice(i, i + CONCURRENCY).map((record) => this.ping(record)))
    }
  }

  private async ping (record: SessionRecord): Promise<void> {
    let status: number | undefined
    // An id no client uses: the answer comes back to the gateway only.
    const ping: JsonRpcMessage = { jsonrpc: '2.0', id: `mcp-gateway-ping-${++this.counter}`, method: 'ping' }
    try {
      const answer = await this.upstream.send({
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          [HEADER.sessionId]: record.upstreamSessionId as string,
          [HEADER.protocolVersion]: record.protocolVersion
        },
        body: JSON.stringify(ping),
        messages: [ping],
        maxBytes: PING_ANSWER_BYTES,
        // A per-user upstream refuses a request with no caller: every ping would fail.
        caller: sessionCaller(record)
      })
      releaseAnswer(answer)
      status = 200
    } catch (err) {
      // A session the upstream forgot is dead at once; other failures count toward the limit.
      const failed = err as { code?: string, upstreamStatus?: number }
      this.log.debug({ sessionId: record.id, err }, 'heartbeat ping failed')
      // No token for the session's user (not signed in, or revoked) says nothing of the upstream
      // session: the user's next request gets the consent error and signs in again.
      if (failed.code !== undefined && NOT_ASKED.has(failed.code)) return
      status = failed.code === 'MCP_GW_UPSTREAM_SESSION_GONE' ? 404 : failed.upstreamStatus
    }
    if (status !== undefined && status < 300) {
      this.failures.delete(record.id)
      return
    }
    const failures = status === 404 ? this.options.maxFailures : (this.failures.get(record.id) ?? 0) + 1
    if (failures < this.options.maxFailures) {
      this.failures.set(record.id, failures)
      return
    }
    this.log.info({ sessionId: record.id, upstream: this.upstream.name, status }, 'upstream session is dead')
    await this.sessions.end(record.id, 'upstream-gone')
  }
}
