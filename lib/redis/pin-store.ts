/**
 * Pins on Redis, shared by every instance on the same Redis and key prefix: one hash per upstream
 * (`<prefix>pins:<upstream>`), the field `p:<tool>` its pin and `q:<tool>` a proposal, so noting a
 * proposal (HSET q:) and approving one (HSET p:, HDEL q:, in one MULTI) never overwrite each other.
 * Pins have no expiry: they are what an operator approved. A set of the upstreams with pins
 * (`<prefix>pins`) lets the admin API list them without scanning keys.
 */
import type { Redis } from 'ioredis'
import type { Pin, PinStore, Proposal, UpstreamPins } from '../pinning/store.ts'
import { guard } from './guard.ts'

export class RedisPinStore implements PinStore {
  private readonly redis: Redis
  private readonly prefix: string

  constructor (redis: Redis, keyPrefix: string) {
    this.redis = redis
    this.prefix = keyPrefix
  }

  private key (upstream: string): string {
    return `${this.prefix}pins:${upstream}`
  }

  async load (upstream: string): Promise<UpstreamPins> {
    const fields = await guard('session', this.redis.hgetall(this.key(upstream)))
    const out: UpstreamPins = { pins: new Map(), proposals: new Map() }
    for (const [field, value] of Object.entries(fields)) {
      const tool = field.slice(2)
      const parsed = JSON.parse(value) as Pin & Proposal
      if (field.startsWith('p:')) out.pins.set(tool, parsed)
      else if (field.startsWith('q:')) out.proposals.set(tool, parsed)
    }
    return out
  }

  async pinIfAbsent (upstream: string, tool: string, pin: Pin): Promise<boolean> {
    const key = this.key(upstream)
    const replies = await guard('session', this.redis.multi().hsetnx(key, `p:${tool}`, JSON.stringify(pin)).sadd(`${this.prefix}pins`, upstream).exec())
    return replies?.[0]?.[1] === 1
  }

  async propose (upstream: string, tool: string, proposal: Proposal): Promise<void> {
    await guard('session', this.redis.multi().hset(this.key(upstream), `q:${tool}`, JSON.stringify(proposal)).sadd(`${this.prefix}pins`, upstream).exec())
  }

  async approve (upstream: string, tool: string, pin: Pin): Promise<void> {
    await guard('session', this.redis.multi().hset(this.key(upstream), `p:${tool}`, JSON.stringify(pin)).hdel(this.key(upstream), `q:${tool}`).exec())
  }

  async upstreams (): Promise<string[]> {
    return await guard('session', this.redis.smembers(`${this.prefix}pins`))
  }
}
