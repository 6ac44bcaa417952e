/**
 * Held calls on Redis, shared by every instance on the same Redis and key prefix. A held call is
 * `<prefix>approval:<id>` (JSON, expiring a minute after its own timeout) and a member of the
 * sorted set `<prefix>approvals` (score: when it expires), so the queue is listed without
 * scanning keys. Its decision is `<prefix>approval:<id>:decision`, set with NX (the first
 * decision wins, whichever instance made it), then published on `<prefix>approvals`, where every
 * instance hears of calls held and decided.
 */
import type { Redis } from 'ioredis'
import type { ApprovalDecision, ApprovalStore, ApprovalStoreEvent, HeldCall } from '../approval/store.ts'
import { guard } from './guard.ts'

/** Kept this long past a call's timeout: a late decision still finds it. */
const LINGER_MS = 60_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** Most held calls listed at once. */
const LIST_MAX = 1000

export class RedisApprovalStore implements ApprovalStore {
  private readonly redis: Redis
  private readonly prefix: string
  private readonly channel: string
  private subscriber: Redis | undefined

  constructor (redis: Redis, keyPrefix: string) {
    this.redis = redis
    this.prefix = keyPrefix
    this.channel = `${keyPrefix}approvals`
  }

  private key (id: string): string {
    return `${this.prefix}approval:${id}`
  }

  async put (call: HeldCall): Promise<void> {
    const ttl = Math.max(1, call.expiresAt - Date.now()) + LINGER_MS
    const event: ApprovalStoreEvent = { kind: 'held', call }
    await guard('session', this.redis.multi()
      .set(this.key(call.id), JSON.stringify(call), 'PX', ttl)
      .zadd(this.channel, call.expiresAt + LINGER_MS, call.id)
      .publish(this.channel, JSON.stringify(event))
      .exec())
  }

  async list (): Promise<HeldCall[]> {
    const now = Date.now()
    const [, ids] = await guard('session', Promise.all([
      this.redis.zremrangebyscore(this.channel, '-inf', `(${now}`),
      this.redis.zrangebyscore(this.channel, now, '+inf', 'LIMIT', 0, LIST_MAX)
    ]))
    if (ids.length === 0) return []
    // One GET each (not MGET): the keys may be in different slots of a Redis Cluster.
    const values = await guard('session', Promise.all(ids.flatMap((id) => [this.redis.get(this.key(id)), this.redis.exists(`${this.key(id)}:decision`)])))
    const calls: HeldCall[] = []
    for (let i = 0; i < ids.length; i++) {
      const json = values[2 * i] as string | null
      if (json !== null && values[2 * i + 1] === 0) calls.push(JSON.parse(json) as HeldCall)
    }
    return calls.sort((a, b) => a.heldAt - b.heldAt)
  }

  async get (id: string): Promise<HeldCall | undefined> {
    // Ids are the gateway's UUIDs: anything else names no held call (nor its decision's key).
    if (!UUID.test(id)) return undefined
    const json = await guard('session', this.redis.get(this.key(id)))
    return json === null ? undefined : JSON.parse(json) as HeldCall
  }

  async decide (id: string, decision: ApprovalDecision): Promise<boolean> {
    const ttl = await guard('session', this.redis.pttl(this.key(id)))
    // Gone (or never held): nothing to decide.
    if (ttl <= 0) return false
    const set = await guard('session', this.redis.set(`${this.key(id)}:decision`, JSON.stringify(decision), 'PX', ttl, 'NX'))
    if (set !== 'OK') return false
    const event: ApprovalStoreEvent = { kind: 'decided', id, decision }
    await guard('session', this.redis.publish(this.channel, JSON.stringify(event)))
    return true
  }

  async decision (id: string): Promise<ApprovalDecision | undefined> {
    const json = await guard('session', this.redis.get(`${this.key(id)}:decision`))
    return json === null ? undefined : JSON.parse(json) as ApprovalDecision
  }

  async cancel (session: string, requestId: string | number): Promise<void> {
    const event: ApprovalStoreEvent = { kind: 'cancelled', session, requestId }
    await guard('session', this.redis.publish(this.channel, JSON.stringify(event)))
  }

  async remove (id: string): Promise<void> {
    await guard('session', this.redis.multi().del(this.key(id), `${this.key(id)}:decision`).zrem(this.channel, id).exec())
  }

  async subscribe (listener: (event: ApprovalStoreEvent) => void): Promise<void> {
    const subscriber = this.redis.duplicate({ enableOfflineQueue: true })
    // Reconnects on its own; a decision missed meanwhile is read when the call's time is up.
    subscriber.on('error', () => {})
    subscriber.on('message', (_channel: string, text: string) => {
      let event: ApprovalStoreEvent
      try {
        event = JSON.parse(text) as ApprovalStoreEvent
      } catch {
        return
      }
      listener(event)
    })
    this.subscriber = subscriber
    try {
      await subscriber.subscribe(this.channel)
    } catch (err) {
      // Nothing may keep reconnecting after a failed start.
      subscriber.disconnect()
      this.subscriber = undefined
      throw err
    }
  }

  async close (): Promise<void> {
    this.subscriber?.disconnect()
    this.subscriber = undefined
  }
}
