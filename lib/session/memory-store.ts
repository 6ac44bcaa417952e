import type { SessionRecord, SessionStore } from './store.ts'

/**
 * The default store: one process, no setup. Records are copied in and out so callers can never
 * mutate the stored state by accident, exactly as with a networked store.
 */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecord>()

  async create (record: SessionRecord): Promise<void> {
    this.records.set(record.id, { ...record })
  }

  async get (id: string): Promise<SessionRecord | undefined> {
    const record = this.records.get(id)
    return record === undefined ? undefined : { ...record }
  }

  async update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined> {
    const record = this.records.get(id)
    if (record === undefined) return undefined
    Object.assign(record, patch)
    return { ...record }
  }

  async touch (id: string, at: number): Promise<void> {
    const record = this.records.get(id)
    if (record !== undefined) record.lastSeenAt = at
  }

  async delete (id: string): Promise<boolean> {
    return this.records.delete(id)
  }

  async size (): Promise<number> {
    return this.records.size
  }

  async listExpired (idleBefore: number, createdBefore: number, limit: number): Promise<SessionRecord[]> {
    const out: SessionRecord[] = []
    for (const record of this.records.values()) {
      if (out.length >= limit) break
      if (record.lastSeenAt < idleBefore || record.createdAt < createdBefore) out.push({ ...record })
    }
    return out
  }

  async list (limit: number): Promise<SessionRecord[]> {
    return [...this.records.values()].sort((a, b) => b.lastSeenAt - a.lastSeenAt).slice(0, limit).map((record) => ({ ...record }))
  }

  async close (): Promise<void> {
    this.records.clear()
  }
}
