/** The instances' shared key-value store on Redis (what a virtual session's members are, say). */
import type { Redis } from 'ioredis'
import type { SharedState } from '../federation/virtual-state.ts'
import { guard } from './guard.ts'

export class RedisSharedState implements SharedState {
  private readonly redis: Redis
  private readonly prefix: string

  constructor (redis: Redis, keyPrefix: string) {
    this.redis = redis
    this.prefix = keyPrefix
  }

  async get (key: string): Promise<string | undefined> {
    return (await guard('session', this.redis.get(this.prefix + key))) ?? undefined
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    await guard('session', this.redis.set(this.prefix + key, value, 'PX', ttlMs))
  }

  async delete (key: string): Promise<void> {
    await guard('session', this.redis.del(this.prefix + key))
  }
}
