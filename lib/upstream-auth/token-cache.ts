/**
 * Tokens the gateway holds in memory, by key (the upstream's own for client credentials, the
 * principal for exchanged tokens): a fresh one is read with no await, one near its expiry is
 * fetched anew, and concurrent requests for a missing key share one fetch (a hundred calls after
 * an expiry cost the token endpoint one request). Bounded: least recently used keys go first.
 */
import { LRUCache } from 'lru-cache'
import type { IssuedToken } from './token-endpoint.ts'

export interface TokenCacheOptions {
  /** Most keys kept. */
  max: number
  /** A token this close to its expiry counts as expired (clock skew, and the request's own time). */
  refreshBeforeMs: number
  now?: () => number
}

export class TokenCache {
  private readonly tokens: LRUCache<string, IssuedToken>
  private readonly fetching = new Map<string, Promise<IssuedToken>>()
  private readonly refreshBeforeMs: number
  private readonly now: () => number

  constructor (options: TokenCacheOptions) {
    this.tokens = new LRUCache({ max: options.max })
    this.refreshBeforeMs = options.refreshBeforeMs
    this.now = options.now ?? Date.now
  }

  /** The fresh token for the key, if one is held: the hot path, with no promise. */
  peek (key: string): string | undefined {
    const token = this.tokens.get(key)
    if (token === undefined) return undefined
    if (token.expiresAt - this.refreshBeforeMs > this.now()) return token.accessToken
    this.tokens.delete(key)
    return undefined
  }

  /** The fresh token for the key, fetched (once for every concurrent caller) when none is held. */
  async get (key: string, fetch: () => Promise<IssuedToken>): Promise<string> {
    const held = this.peek(key)
    if (held !== undefined) return held
    let pending = this.fetching.get(key)
    if (pending === undefined) {
      pending = fetch()
      this.fetching.set(key, pending)
      pending.then((token) => {
        if (this.fetching.get(key) === pending) this.tokens.set(key, token)
      }, () => {}).finally(() => {
        if (this.fetching.get(key) === pending) this.fetching.delete(key)
      })
    }
    return (await pending).accessToken
  }

  /** The upstream refused this token: forget it (unless a newer one replaced it meanwhile). */
  drop (key: string, accessToken?: string): void {
    if (accessToken === undefined || this.tokens.get(key)?.accessToken === accessToken) this.tokens.delete(key)
  }
}
