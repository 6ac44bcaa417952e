import { isWellFormedSessionId, newSessionId } from './id.ts'
import type { SessionRecord, SessionStore } from './store.ts'

export interface OpenSession {
  upstream: string
  upstreamSessionId: string | null
  protocolVersion: string
  clientInfo?: Record<string, unknown>
  clientCapabilities?: Record<string, unknown>
}

const SWEEP_CONCURRENCY = 32

/** Why a session ended. */
export type SessionEndReason = 'deleted' | 'expired' | 'upstream-gone' | 'failed'

export type SessionEndListener = (record: SessionRecord, reason: SessionEndReason) => void | Promise<void>

export interface SessionLimits {
  /**
   * A session not used for this long is expired (the upstream is told, everything it held freed).
   * @default 1800000 (30 minutes)
   */
  idleTimeoutMs: number
  /**
   * A session older than this is expired however busy it is.
   * @default 86400000 (24 hours)
   */
  maxLifetimeMs: number
  /**
   * Most live sessions; an `initialize` past it gets 503 with `Retry-After`.
   * @default 10000
   */
  maxSessions: number
}

export const SESSION_LIMITS: SessionLimits = {
  idleTimeoutMs: 30 * 60_000,
  maxLifetimeMs: 24 * 60 * 60_000,
  maxSessions: 10_000
}

/** Issues gateway session ids, keeps their records in a `SessionStore`, and expires them. */
export class SessionManager {
  readonly store: SessionStore
  readonly limits: SessionLimits
  private readonly now: () => number
  private readonly endListeners: SessionEndListener[] = []
  /** Counters since start, for metrics. */
  readonly counts = { created: 0, expired: 0, rejected: 0, ended: 0 }

  constructor (store: SessionStore, now: () => number = Date.now, limits: Partial<SessionLimits> = {}) {
    this.store = store
    this.now = now
    this.limits = { ...SESSION_LIMITS, ...limits }
  }

  /** Called with every session that ends, whatever the reason: free what you hold for it. */
  onEnd (listener: SessionEndListener, options: { first?: boolean } = {}): void {
    // `first`: told before the others (which may wait on an upstream), for listeners that only
    // pass the news on to a client.
    if (options.first === true) this.endListeners.unshift(listener)
    else this.endListeners.push(listener)
  }

  /** Sessions on their way to opening here (an `initialize` gone upstream), counted against the cap. */
  private opening = 0

  /**
   * Takes a place under the session cap for an `initialize` about to go upstream; undefined when
   * there is none. Check and take are one step after the store answers, so concurrent
   * `initialize`s cannot all pass the check before any of them opens. Give the place back with
   * `release()` once the session opened or failed (a second call does nothing).
   */
  async reserve (): Promise<{ release: () => void } | undefined> {
    const size = await this.store.size()
    if (size + this.opening >= this.limits.maxSessions) {
      this.counts.rejected++
      return undefined
    }
    this.opening++
    let held = true
    return {
      release: () => {
        if (!held) return
        held = false
        this.opening--
      }
    }
  }

  async open (init: OpenSession): Promise<SessionRecord> {
    const at = this.now()
    const record: SessionRecord = { id: newSessionId(), ...init, createdAt: at, lastSeenAt: at }
    await this.store.create(record)
    this.counts.created++
    return record
  }

  /** The live record for an id a client sent, marked as seen; undefined for anything unknown. */
  async find (id: string): Promise<SessionRecord | undefined> {
    if (!isWellFormedSessionId(id)) return undefined
    const at = this.now()
    if (this.store.getAndTouch !== undefined) return this.store.getAndTouch(id, at)
    const record = await this.store.get(id)
    if (record === undefined) return undefined
    record.lastSeenAt = at
    await this.store.touch(id, at)
    return record
  }

  update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined> {
    return this.store.update(id, patch)
  }

  /** Ends a session: deletes its record and tells every end listener. */
  async end (id: string, reason: SessionEndReason = 'deleted'): Promise<boolean> {
    const record = await this.store.get(id)
    const deleted = await this.store.delete(id)
    if (!deleted || record === undefined) return false
    this.counts.ended++
    if (reason === 'expired') this.counts.expired++
    for (const listener of this.endListeners) {
      // Listeners log their own failures; one failing must not keep the others from freeing theirs.
      try {
        await listener(record, reason)
      } catch {}
    }
    return true
  }

  /** Ends every session past its idle timeout or lifetime; returns how many. */
  async sweep (batch = 1000): Promise<number> {
    const now = this.now()
    const expired = await this.store.listExpired(now - this.limits.idleTimeoutMs, now - this.limits.maxLifetimeMs, batch)
    let ended = 0
    // A few at a time: ending one may wait on its upstream, and a sweep must keep up with churn.
    for (let i = 0; i < expired.length; i += SWEEP_CONCURRENCY) {
      const results = await Promise.all(expired.slice(i, i + SWEEP_CONCURRENCY).map((record) => this.end(record.id, 'expired')))
      for (const result of results) if (result) ended++
    }
    return ended
  }

  /** The sessions seen last, newest first. */
  list (limit: number): Promise<SessionRecord[]> {
    return this.store.list(limit)
  }

  count (): Promise<number> {
    return this.store.size()
  }
}
