/**
 * Where per-user upstream tokens and sign-ins in progress are kept: small string values by key,
 * each with a lifetime. In memory (one instance, the default) or in Redis (`lib/redis/
 * token-store.ts`, shared by every instance: a user who signed in through one is signed in on
 * all). Values are sealed before they get here: the store never holds a token in the clear.
 */
import { LRUCache } from 'lru-cache'

export interface TokenStore {
  get (key: string): Promise<string | undefined>
  set (key: string, value: string, ttlMs: number): Promise<void>
  /** Sets the value unless the key holds one already; false when it did (another instance won). */
  setIfAbsent (key: string, value: string, ttlMs: number): Promise<boolean>
  /** Reads and removes, at once: a sign-in's state is good for one callback. */
  take (key: string): Promise<string | undefined>
  delete (key: string): Promise<boolean>
  /** Keys under a prefix (an upstream's, a principal's), at most `limit`. */
  keys (prefix: string, limit: number): Promise<string[]>
}

export class MemoryTokenStore implements TokenStore {
  private readonly values: LRUCache<string, string>

  constructor (max = 100_000) {
    this.values = new LRUCache({ max })
  }

  async get (key: string): Promise<string | undefined> {
    return this.values.get(key)
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    this.values.set(key, value, { ttl: ttlMs })
  }

  async setIfAbsent (key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.values.has(key)) return false
    this.values.set(key, value, { ttl: ttlMs })
    return true
  }

  async take (key: string): Promise<string | undefined> {
    const value = this.values.get(key)
    this.values.delete(key)
    return value
  }

  async delete (key: string): Promise<boolean> {
    return this.values.delete(key)
  }

  async keys (prefix: string, limit: number): Promise<string[]> {
    const out: string[] = []
    for (const key of this.values.keys()) {
      if (out.length >= limit) break
      if (key.startsWith(prefix) && this.values.has(key)) out.push(key)
    }
    return out
  }
}
