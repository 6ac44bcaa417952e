/**
 * Session records in Redis, shared by every gateway instance: one key per session (JSON), and two
 * sorted sets (last seen, created) so the sweeper finds expired sessions without scanning keys.
 * Updates that two instances may race on run as one Lua script. The store never closes a client
 * it was given.
 *
 * The request path reads records through a short cache, and "seen" times go to Redis in one batch
 * per `cacheMs`: most calls then need no Redis round trip at all. An instance that ends or
 * changes a session tells the others on a pub/sub channel; a record cached elsewhere is stale for
 * at most `cacheMs` even if that message is lost (the cache is also dropped on every reconnect).
 */
import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { SessionRecord, SessionStore } from '../session/store.ts'
import { guard } from './guard.ts'

export interface RedisSessionStoreOptions {
  client: Redis
  /**
   * Prefix of every key; give each gateway deployment its own.
   * @default 'mcp-gw:'
   */
  keyPrefix?: string
  /**
   * Expiry of a record key, a guard against records outliving every gateway that could sweep
   * them; the sweeper normally ends sessions long before.
   * @default 25 hours
   */
  recordTtlMs?: number
  /**
   * How long a record read on the request path is trusted, and how often "seen" times are
   * written. 0 reads Redis on every request.
   * @default 1000
   */
  cacheMs?: number
  /**
   * Most records cached: past it the least recently used go first, so sessions read once and
   * never again do not pile up until their entry is next read.
   * @default 10000
   */
  cacheMax?: number
}

// Merges a JSON patch into the record, keeping the key's TTL; nil when the session is gone.
const UPDATE = `
local current = redis.call('GET', KEYS[1])
if not current then return nil end
local record = cjson.decode(current)
for k, v in pairs(cjson.decode(ARGV[1])) do record[k] = v end
local out = cjson.encode(record)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return out
`

export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly ttl: number
  private readonly cacheMs: number
  private readonly cache: LRUCache<string, { record: SessionRecord, until: number }>
  /** "Seen" times not yet written. */
  private readonly seenLater = new Map<string, number>()
  private subscriber: Redis | undefined
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined

  constructor (options: RedisSessionStoreOptions) {
    this.redis = options.client
    this.prefix = options.keyPrefix ?? 'mcp-gw:'
    this.ttl = options.recordTtlMs ?? 25 * 60 * 60_000
    this.cacheMs = options.cacheMs ?? 1000
    this.cache = new LRUCache({ max: options.cacheMax ?? 10_000 })
    this.redis.defineCommand('mcpGatewayUpdate', { numberOfKeys: 1, lua: UPDATE })
    if (this.cacheMs > 0) {
      const subscriber = this.redis.duplicate({ enableOfflineQueue: true })
      subscriber.on('error', () => {})
      // Messages sent while disconnected are lost: start afresh on every (re)connect.
      subscriber.on('ready', () => this.cache.clear())
      subscriber.on('message', (_channel: string, id: string) => this.cache.delete(id))
      subscriber.subscribe(this.channel).catch(() => {})
      this.subscriber = subscriber
      this.timer = setInterval(() => { void this.flush() }, this.cacheMs)
      this.timer.unref()
    }
  }

  private get channel (): string {
    return `${this.prefix}sx`
  }

  /** Writes the batched "seen" times (XX: never resurrect a session deleted meanwhile). */
  private flush (): Promise<void> {
    if (this.flushing !== undefined || this.seenLater.size === 0) return this.flushing ?? Promise.resolve()
    const batch: Array<number | string> = []
    for (const [id, at] of this.seenLater) batch.push(at, id)
    this.seenLater.clear()
    this.flushing = this.redis.zadd(this.seen, 'XX', ...batch)
      .then(() => {}, () => {})
      .finally(() => { this.flushing = undefined })
    return this.flushing
  }

  /** Drops a record from every instance's cache. */
  private changed (id: string): void {
    this.cache.delete(id)
    if (this.cacheMs > 0) this.redis.publish(this.channel, id).catch(() => {})
  }

  private key (id: string): string {
    return `${this.prefix}s:${id}`
  }

  private get seen (): string {
    return `${this.prefix}seen`
  }

  private get born (): string {
    return `${this.prefix}born`
  }

  async create (record: SessionRecord): Promise<void> {
    await guard('session', this.redis.multi()
      .set(this.key(record.id), JSON.stringify(record), 'PX', this.ttl)
      .zadd(this.seen, record.lastSeenAt, record.id)
      .zadd(this.born, record.createdAt, record.id)
      .exec())
  }

  async get (id: string): Promise<SessionRecord | undefined> {
    const results = await guard('session', this.redis.pipeline().get(this.key(id)).zscore(this.seen, id).exec())
    const json = results?.[0]?.[1] as string | null | undefined
    if (json == null) return undefined
    const record = JSON.parse(json) as SessionRecord
    const seen = results?.[1]?.[1] as string | null | undefined
    if (seen != null) record.lastSeenAt = Number(seen)
    // A "seen" time not written yet is newer than Redis's.
    const later = this.seenLater.get(id)
    if (later !== undefined && later > record.lastSeenAt) record.lastSeenAt = later
    return record
  }

  /** The request path: a cached record (or one round trip), marked as seen at `at`. */
  async getAndTouch (id: string, at: number): Promise<SessionRecord | undefined> {
    if (this.cacheMs > 0) {
      const cached = this.cache.get(id)
      if (cached !== undefined && cached.until > at) {
        this.seenLater.set(id, at)
        return { ...cached.record, lastSeenAt: at }
      }
    }
    const results = await guard('session', this.redis.pipeline().zadd(this.seen, 'XX', at, id).get(this.key(id)).exec())
    const json = results?.[1]?.[1] as string | null | undefined
    if (json == null) {
      this.cache.delete(id)
      return undefined
    }
    const record = JSON.parse(json) as SessionRecord
    record.lastSeenAt = at
    if (this.cacheMs > 0) this.cache.set(id, { record, until: at + this.cacheMs })
    return { ...record }
  }

  async update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined> {
    const out = await guard('session', (this.redis as unknown as { mcpGatewayUpdate (key: string, patch: string): Promise<string | null> })
      .mcpGatewayUpdate(this.key(id), JSON.stringify(patch)))
    this.changed(id)
    if (out === null) return undefined
    if (patch.lastSeenAt !== undefined) await this.touch(id, patch.lastSeenAt)
    return this.get(id)
  }

  async touch (id: string, at: number): Promise<void> {
    if (this.cacheMs > 0) {
      this.seenLater.set(id, Math.max(at, this.seenLater.get(id) ?? 0))
      return
    }
    // XX: never resurrect a session another instance has just deleted.
    await guard('session', this.redis.zadd(this.seen, 'XX', at, id))
  }

  async delete (id: string): Promise<boolean> {
    this.seenLater.delete(id)
    const results = await guard('session', this.redis.multi().del(this.key(id)).zrem(this.seen, id).zrem(this.born, id).exec())
    this.changed(id)
    return results?.[0]?.[1] === 1
  }

  async size (): Promise<number> {
    return guard('session', this.redis.zcard(this.seen))
  }

  async listExpired (idleBefore: number, createdBefore: number, limit: number): Promise<SessionRecord[]> {
    await this.flush()
    const [idle, old] = await guard('session', Promise.all([
      this.redis.zrangebyscore(this.seen, '-inf', `(${idleBefore}`, 'LIMIT', 0, limit),
      this.redis.zrangebyscore(this.born, '-inf', `(${createdBefore}`, 'LIMIT', 0, limit)
    ]))
    const ids = [...new Set([...idle, ...old])].slice(0, limit)
    if (ids.length === 0) return []
    const values = await guard('session', this.redis.mget(ids.map((id) => this.key(id))))
    const out: SessionRecord[] = []
    const vanished: string[] = []
    values.forEach((json, i) => {
      const id = ids[i] as string
      if (json === null) vanished.push(id)
      else out.push(JSON.parse(json) as SessionRecord)
    })
    // Records whose key expired on its own leave index entries behind: drop them.
    if (vanished.length > 0) await guard('session', this.redis.multi().zrem(this.seen, ...vanished).zrem(this.born, ...vanished).exec())
    return out
  }

  async list (limit: number): Promise<SessionRecord[]> {
    await this.flush()
    const ids = await guard('session', this.redis.zrevrange(this.seen, 0, limit - 1))
    if (ids.length === 0) return []
    const values = await guard('session', this.redis.mget(ids.map((id) => this.key(id))))
    return values.filter((json): json is string => json !== null).map((json) => JSON.parse(json) as SessionRecord)
  }

  async close (): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
    this.subscriber?.disconnect()
    this.subscriber = undefined
    this.cache.clear()
  }
}
