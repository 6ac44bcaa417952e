/**
 * Per-user upstream tokens on Redis (`<prefix>tokens:<key>`), shared by every instance on the same
 * Redis and key prefix: one string key per value, its lifetime as Redis' own expiry, so nothing
 * sweeps. Values arrive sealed (AES-256-GCM): Redis never holds a token in the clear.
 */
import type { Redis } from 'ioredis'
import type { TokenStore } from '../upstream-auth/token-store.ts'
import { guard } from './guard.ts'

const SCAN_COUNT = 500

export class RedisTokenStore implements TokenStore {
  private readonly redis: Redis
  private readonly prefix: string

  constructor (redis: Redis, keyPrefix: string) {
    this.redis = redis
    this.prefix = `${keyPrefix}tokens:`
  }

  async get (key: string): Promise<string | undefined> {
    return await guard('session', this.redis.get(this.prefix + key)) ?? undefined
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    await guard('session', this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs))))
  }

  async setIfAbsent (key: string, value: string, ttlMs: number): Promise<boolean> {
    return await guard('session', this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK'
  }

  async take (key: string): Promise<string | undefined> {
    return await guard('session', this.redis.getdel(this.prefix + key)) ?? undefined
  }

  async delete (key: string): Promise<boolean> {
    return await guard('session', this.redis.del(this.prefix + key)) > 0
  }

  async keys (prefix: string, limit: number): Promise<string[]> {
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
}

/** A key prefix as a SCAN pattern matching itself only. */
function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
