/**
 * A virtual session's retries of its members that are down: the first after `retryMs`, doubling
 * up to `maxRetryMs`; a request that needs the member may try it sooner (`kick`), at most once per
 * `retryMs`. Only a retry brings a down member back (a re-open elsewhere would race it). Timers
 * are unref()ed and cleared with the session.
 */
import { GatewayErrors } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { MemberLink } from './member-link.ts'
import type { VirtualServer } from './virtual-server.ts'

/** Failures that mean the member cannot serve now: one coded error naming it. */
const DOWN_CODES = new Set(['MCP_GW_UPSTREAM_UNAVAILABLE', 'MCP_GW_UPSTREAM_EXITED', 'MCP_GW_UPSTREAM_STREAM_ENDED', 'MCP_GW_UPSTREAM_TIMEOUT', 'MCP_GW_UPSTREAM_FULL', 'MCP_GW_UPSTREAM_BACKLOG'])

/** What a call's caller hears of a member failure; a member whose process went is down till a retry. */
export function memberFailure (link: MemberLink, err: unknown, generation: number): unknown {
  const code = (err as { code?: string }).code
  if (code === undefined || !DOWN_CODES.has(code)) return err
  // Its process or connection is gone: down until a retry re-opens it. A reset socket or a
  // slow answer is only that call's (the member's own stream tells when it is really gone).
  if (code === 'MCP_GW_UPSTREAM_EXITED') link.markDown(err as Error, generation)
  return new GatewayErrors.MEMBER_DOWN(link.name, link.spec.server, (err as Error).message)
}

interface Retry {
  timer: NodeJS.Timeout | undefined
  failures: number
  trying: boolean
  last: number
}

export class MemberRetries {
  private readonly server: VirtualServer
  private readonly log: Logger
  private readonly retries = new Map<MemberLink, Retry>()
  private stopped = false

  constructor (server: VirtualServer, log: Logger) {
    this.server = server
    this.log = log
  }

  /** Whether the member is being retried (it is down). */
  has (link: MemberLink): boolean {
    return this.retries.has(link)
  }

  /** Tries a member that is down again soon (now, unless it was tried within `retryMs`). */
  kick (link: MemberLink): void {
    const retry = this.retries.get(link)
    if (retry === undefined) {
      if (link.state === 'down') this.schedule(link)
      return
    }
    if (retry.trying || Date.now() - retry.last < this.server.retryMs) return
    clearTimeout(retry.timer)
    this.attempt(link)
  }

  schedule (link: MemberLink): void {
    if (this.stopped) return
    const retry = this.retries.get(link) ?? { timer: undefined, failures: 0, trying: false, last: Date.now() }
    this.retries.set(link, retry)
    clearTimeout(retry.timer)
    const wait = Math.min(this.server.retryMs * 2 ** retry.failures, this.server.maxRetryMs)
    retry.timer = setTimeout(() => { this.attempt(link) }, wait)
    // A session's retries never keep the process alive; stop() clears them.
    retry.timer.unref()
  }

  stop (): void {
    this.stopped = true
    for (const retry of this.retries.values()) clearTimeout(retry.timer)
    this.retries.clear()
  }

  private attempt (link: MemberLink): void {
    const retry = this.retries.get(link)
    if (retry === undefined || this.stopped) return
    retry.trying = true
    retry.timer = undefined
    link.open().then(() => {
      if (link.state !== 'open') {
        // Lost again before this ran: keep trying.
        retry.trying = false
        this.schedule(link)
        return
      }
      this.retries.delete(link)
      // The client hears of it from the link's re-open (the channel's `reopened`).
      this.log.info({ upstream: this.server.name, member: link.name }, 'virtual server: a member is back')
    }, () => {
      retry.trying = false
      retry.last = Date.now()
      retry.failures++
      this.schedule(link)
    })
  }
}
