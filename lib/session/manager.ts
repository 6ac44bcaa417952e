import { isWellFormedSessionId, newSessionId } from './id.ts'
import type { SessionRecord, SessionStore } from './store.ts'

export interface OpenSession {
  upstream: string
  upstreamSessionId: string | null
  protocolVersion: string
  clientInfo?: Record<string, unknown>
  clientCapabilities?: Record<string, unknown>
}

/** Issues gateway session ids and keeps their records in a `SessionStore`. */
export class SessionManager {
  readonly store: SessionStore
  private readonly now: () => number

  constructor (store: SessionStore, now: () => number = Date.now) {
    this.store = store
    this.now = now
  }

  async open (init: OpenSession): Promise<SessionRecord> {
    const at = this.now()
    const record: SessionRecord = { id: newSessionId(), ...init, createdAt: at, lastSeenAt: at }
    await this.store.create(record)
    return record
  }

  /** The live record for an id a client sent, marked as seen; undefined for anything unknown. */
  async find (id: string): Promise<SessionRecord | undefined> {
    if (!isWellFormedSessionId(id)) return undefined
    const record = await this.store.get(id)
    if (record === undefined) return undefined
    record.lastSeenAt = this.now()
    await this.store.touch(id, record.lastSeenAt)
    return record
  }

  update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined> {
    return this.store.update(id, patch)
  }

  end (id: string): Promise<boolean> {
    return this.store.delete(id)
  }

  count (): Promise<number> {
    return this.store.size()
  }
}
