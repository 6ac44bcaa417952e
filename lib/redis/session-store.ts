/**
 * Session records in Redis, shared by every gateway instance: one key per session (JSON), and two
 * sorted sets (last seen, created) so the sweeper finds expired sessions without scanning keys.
 * Updates that two instances may race on run as one Lua script. The store never closes a client
 * it was given.
 */
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

  constructor (options: RedisSessionStoreOptions) {
    this.redis = options.client
    this.prefix = options.keyPrefix ?? 'mcp-gw:'
    this.ttl = options.recordTtlMs ?? 25 * 60 * 60_000
    this.redis.defineCommand('mcpGatewayUpdate', { numberOfKeys: 1, lua: UPDATE })
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
    return record
  }

  /** One round trip for the request path: the record, marked as seen at `at`. */
  async getAndTouch (id: string, at: number): Promise<SessionRecord | undefined> {
    const results = await guard('session', this.redis.pipeline().zadd(this.seen, 'XX', at, id).get(this.key(id)).exec())
    const json = results?.[1]?.[1] as string | null | undefined
    if (json == null) return undefined
    const record = JSON.parse(json) as SessionRecord
    record.lastSeenAt = at
    return record
  }

  async update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined> {
    const out = await guard('session', (this.redis as unknown as { mcpGatewayUpdate (key: string, patch: string): Promise<string | null> })
      .mcpGatewayUpdate(this.key(id), JSON.stringify(patch)))
    if (out === null) return undefined
    if (patch.lastSeenAt !== undefined) await this.touch(id, patch.lastSeenAt)
    return this.get(id)
  }

  async touch (id: string, at: number): Promise<void> {
    // XX: never resurrect a session another instance has just deleted.
    await guard('session', this.redis.zadd(this.seen, 'XX', at, id))
  }

  async delete (id: string): Promise<boolean> {
    const results = await guard('session', this.redis.multi().del(this.key(id)).zrem(this.seen, id).zrem(this.born, id).exec())
    return results?.[0]?.[1] === 1
  }

  async size (): Promise<number> {
    return guard('session', this.redis.zcard(this.seen))
  }

  async listExpired (idleBefore: number, createdBefore: number, limit: number): Promise<SessionRecord[]> {
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

  async close (): Promise<void> {}
}
