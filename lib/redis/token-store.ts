/**
 * Per-user upstream tokens on Redis (`<prefix>tokens:<key>`), shared by every instance on the same
 * Redis and key prefix: one string key per value, its lifetime as Redis' own expiry, so nothing
 * sweeps. Values arrive sealed (AES-256-GCM): Redis never holds a token in the clear. Keys of a
 * group (`t:<upstream>:`) are also in the group's index (`<prefix>tokens-index:<group>`, a sorted
 * set by expiry, trimmed on every write and listing), so listing an upstream's principals costs
 * their number, not the keyspace's.
 */
import type { Redis } from 'ioredis'
import type { TokenStore } from '../upstream-auth/token-store.ts'
import { guard } from './guard.ts'

const SCAN_COUNT = 500

export class RedisTokenStore implements TokenStore {
  private readonly redis: Redis
  private readonly prefix: string
  /** Per group, its keys by expiry (see `keys`). */
  private readonly indexPrefix: string

  constructor (redis: Redis, keyPrefix: string) {
    this.redis = redis
    this.prefix = `${keyPrefix}tokens:`
    this.indexPrefix = `${keyPrefix}tokens-index:`
  }

  async get (key: string): Promise<string | undefined> {
    return await guard('session', this.redis.get(this.prefix + key)) ?? undefined
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    const ms = Math.max(1, Math.ceil(ttlMs))
    const group = groupOf(key)
    if (group === undefined) {
      await guard('session', this.redis.set(this.prefix + key, value, 'PX', ms))
      return
    }
    // Lapsed members go on every write too: an index nobody lists does not grow without end.
    const now = Date.now()
    await guard('session', this.redis.multi().set(this.prefix + key, value, 'PX', ms)
      .zadd(this.index(group), now + ms, key).zremrangebyscore(this.index(group), '-inf', now).exec())
  }

  async setIfAbsent (key: string, value: string, ttlMs: number): Promise<boolean> {
    const ms = Math.max(1, Math.ceil(ttlMs))
    const set = await guard('session', this.redis.set(this.prefix + key, value, 'PX', ms, 'NX')) === 'OK'
    const group = groupOf(key)
    if (set && group !== undefined) await guard('session', this.redis.zadd(this.index(group), Date.now() + ms, key))
    return set
  }

  async take (key: string): Promise<string | undefined> {
    const group = groupOf(key)
    if (group === undefined) return await guard('session', this.redis.getdel(this.prefix + key)) ?? undefined
    const results = await guard('session', this.redis.multi().getdel(this.prefix + key).zrem(this.index(group), key).exec())
    return (results?.[0]?.[1] as string | null) ?? undefined
  }

  async delete (key: string): Promise<boolean> {
    const group = groupOf(key)
    if (group === undefined) return await guard('session', this.redis.del(this.prefix + key)) > 0
    const results = await guard('session', this.redis.multi().del(this.prefix + key).zrem(this.index(group), key).exec())
    return Number(results?.[0]?.[1]) > 0
  }

  /**
   * Keys under a prefix. A group's (`t:<upstream>:`, every principal holding a token for an
   * upstream) are read from its index, a sorted set by expiry, whose lapsed members go first: the
   * admin listing costs its own size, not a walk of the shared keyspace. Any other prefix walks
   * it (SCAN), bounded by `limit`.
   */
  async keys (prefix: string, limit: number): Promise<string[]> {
    if (groupOf(prefix) === prefix) {
      const results = await guard('session', this.redis.multi()
        .zremrangebyscore(this.index(prefix), '-inf', Date.now())
        .zrange(this.index(prefix), 0, limit - 1)
        .exec())
      return results?.[1]?.[1] as string[]
    }
    const out: string[] = []
    let cursor = '0'
    // Bounded: at most `limit` keys, and as many SCAN rounds as it takes to see the keyspace once.
    do {
      const [next, found] = await guard('session', this.redis.scan(cursor, 'MATCH', `${escapeGlob(this.prefix + prefix)}*`, 'COUNT', SCAN_COUNT))
      for (const key of found) {
        if (out.length < limit) out.push(key.slice(this.prefix.length))
      }
      cursor = next
    } while (cursor !== '0' && out.length < limit)
    return out
  }

  private index (group: string): string {
    return `${this.indexPrefix}${group}`
  }
}

/** A key's group, what `keys()` lists by: the key up to its second ':' (`t:<upstream>:`), if it has one. */
function groupOf (key: string): string | undefined {
  const second = key.indexOf(':', key.indexOf(':') + 1)
  return key.indexOf(':') === -1 || second === -1 ? undefined : key.slice(0, second + 1)
}

/** A key prefix as a SCAN pattern matching itself only. */
function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
