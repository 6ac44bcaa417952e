/**
 * The event log on Redis Streams, shared by every gateway instance: one stream per logged stream
 * (entry id `<seq>-0`, so positions are stable across instances), a set of a session's streams, and
 * each stream's last position (so a fully trimmed stream still answers "trimmed", not "unknown").
 * Retention: `MAXLEN` per stream and expiry `maxAgeMs` after a stream's last append (Redis has no
 * cheap per-session byte budget; `maxBytesPerSession` is not enforced here).
 */
import type { Redis } from 'ioredis'
import { RETENTION_DEFAULTS, type EventStore, type ReplayResult, type Retention, type StoredEvent } from '../events/store.ts'

export interface RedisEventStoreOptions {
  client: Redis
  /** @default 'mcp-gw:' */
  keyPrefix?: string
  retention?: Partial<Retention>
}

export class RedisEventStore implements EventStore {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly retention: Retention

  constructor (options: RedisEventStoreOptions) {
    this.redis = options.client
    this.prefix = options.keyPrefix ?? 'mcp-gw:'
    this.retention = { ...RETENTION_DEFAULTS, ...options.retention }
  }

  private streamKey (sessionId: string, streamId: string): string {
    return `${this.prefix}e:${sessionId}:${streamId}`
  }

  private indexKey (sessionId: string): string {
    return `${this.prefix}es:${sessionId}`
  }

  private lastKey (sessionId: string): string {
    return `${this.prefix}el:${sessionId}`
  }

  async open (sessionId: string, streamId: string): Promise<void> {
    const ttl = this.retention.maxAgeMs
    await this.redis.multi()
      .sadd(this.indexKey(sessionId), streamId).pexpire(this.indexKey(sessionId), ttl)
      .hsetnx(this.lastKey(sessionId), streamId, 0).pexpire(this.lastKey(sessionId), ttl)
      .exec()
  }

  async append (sessionId: string, streamId: string, event: StoredEvent): Promise<void> {
    const key = this.streamKey(sessionId, streamId)
    const ttl = this.retention.maxAgeMs
    const fields = ['d', event.data, 'a', String(event.at)]
    if (event.upstreamEventId !== undefined) fields.push('u', event.upstreamEventId)
    await this.redis.multi()
      .xadd(key, 'MAXLEN', String(this.retention.maxEventsPerStream), `${event.seq}-0`, ...fields)
      .pexpire(key, ttl)
      .sadd(this.indexKey(sessionId), streamId).pexpire(this.indexKey(sessionId), ttl)
      .hset(this.lastKey(sessionId), streamId, event.seq).pexpire(this.lastKey(sessionId), ttl)
      .exec()
  }

  async replay (sessionId: string, streamId: string, afterSeq: number): Promise<ReplayResult> {
    const key = this.streamKey(sessionId, streamId)
    const results = await this.redis.pipeline()
      .hget(this.lastKey(sessionId), streamId)
      .xrange(key, '-', '+', 'COUNT', 1)
      .xrange(key, `(${afterSeq}-0`, '+')
      .exec()
    const last = results?.[0]?.[1] as string | null
    if (last == null) return { kind: 'unknown' }
    const first = results?.[1]?.[1] as Array<[string, string[]]>
    const entries = results?.[2]?.[1] as Array<[string, string[]]>
    const firstSeq = first.length > 0 ? seqOf(first[0]?.[0] as string) : Number(last) + 1
    if (afterSeq + 1 < firstSeq) return { kind: 'trimmed' }
    return { kind: 'events', events: entries.map(([id, fields]) => toEvent(id, fields)) }
  }

  async lastSeq (sessionId: string, streamId: string): Promise<number | undefined> {
    const last = await this.redis.hget(this.lastKey(sessionId), streamId)
    return last === null ? undefined : Number(last)
  }

  async deleteSession (sessionId: string): Promise<void> {
    const streams = await this.redis.smembers(this.indexKey(sessionId))
    await this.redis.del(this.indexKey(sessionId), this.lastKey(sessionId), ...streams.map((id) => this.streamKey(sessionId, id)))
  }

  /** Walks this prefix's streams (SCAN): meant for metrics scrapes, not for request paths. */
  async stats (): Promise<{ events: number, bytes: number, streams: number }> {
    let events = 0
    let streams = 0
    let cursor = '0'
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}e:*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) {
        const pipeline = this.redis.pipeline()
        for (const key of keys) pipeline.xlen(key)
        const lengths = await pipeline.exec()
        for (const [, length] of lengths ?? []) events += Number(length)
        streams += keys.length
      }
    } while (cursor !== '0')
    // Bytes are not tracked on Redis (no cheap per-session byte count); 0 keeps gauges sane.
    return { events, bytes: 0, streams }
  }

  async close (): Promise<void> {}
}

function seqOf (id: string): number {
  return Number(id.slice(0, id.indexOf('-')))
}

function toEvent (id: string, fields: string[]): StoredEvent {
  const event: StoredEvent = { seq: seqOf(id), data: '', at: 0 }
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1] as string
    switch (fields[i]) {
      case 'd': event.data = value; break
      case 'a': event.at = Number(value); break
      case 'u': event.upstreamEventId = value; break
    }
  }
  return event
}
