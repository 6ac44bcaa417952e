/**
 * The event log on Redis Streams, shared by every gateway instance: one stream per logged stream
 * (entry id `<seq>-0`, so positions are stable across instances), a set of a session's streams, and
 * a hash of each stream's last position, completion, upstream resume point and pending requests
 * (so a fully trimmed stream still answers "trimmed", and another instance can take it over).
 * Instances coordinate through a lease key per fed stream and a pub/sub channel per stream. A
 * stream's claim, appends and release of one tick go to Redis as one script (event-batch.ts).
 * Retention: `MAXLEN` per stream and expiry `maxAgeMs` after a stream's last append (Redis has no
 * cheap per-session byte budget; `maxBytesPerSession` is not enforced here).
 */
import type { Redis } from 'ioredis'
import { RETENTION_DEFAULTS, type AppendOptions, type EventStore, type ReplayResult, type Retention, type SharedLog, type StoredEvent, type StreamRef, type StreamStatus } from '../events/store.ts'
import { guard } from './guard.ts'
import { StreamBatcher, type StreamKeys } from './event-batch.ts'

export interface RedisEventStoreOptions {
  client: Redis
  /** @default 'mcp-gw:' */
  keyPrefix?: string
  retention?: Partial<Retention>
}

// Renews a lease still held by (or lapsed from) this owner; 0 when another owner took it.
const RENEW = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

interface Scripts {
  mcpGatewayRenew (lease: string, owner: string, leaseMs: number): Promise<number>
}

type Listener = (seq: number, done: boolean) => void

export class RedisEventStore implements EventStore, SharedLog {
  private readonly redis: Redis
  private readonly scripts: Scripts
  private readonly prefix: string
  private readonly retention: Retention
  /** Pub/sub needs a connection of its own, made on the first watch. */
  private subscriber: Redis | undefined
  private readonly listeners = new Map<string, Set<Listener>>()
  /** Claims, appends and releases of one stream in one tick: one script call. */
  private readonly batcher: StreamBatcher

  readonly shared: SharedLog = this

  constructor (options: RedisEventStoreOptions) {
    this.redis = options.client
    this.prefix = options.keyPrefix ?? 'mcp-gw:'
    this.retention = { ...RETENTION_DEFAULTS, ...options.retention }
    this.redis.defineCommand('mcpGatewayRenew', { numberOfKeys: 1, lua: RENEW })
    this.scripts = this.redis as unknown as Scripts
    this.batcher = new StreamBatcher(this.redis, this.retention.maxEventsPerStream, this.retention.maxAgeMs)
  }

  private keys (sessionId: string, streamId: string): StreamKeys {
    return {
      stream: this.streamKey(sessionId, streamId),
      index: this.indexKey(sessionId),
      last: this.lastKey(sessionId),
      channel: this.channel(sessionId, streamId),
      lease: this.leaseKey(sessionId, streamId)
    }
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

  private leaseKey (sessionId: string, streamId: string): string {
    return `${this.prefix}eo:${sessionId}:${streamId}`
  }

  private followKey (sessionId: string, streamId: string): string {
    return `${this.prefix}ef:${sessionId}:${streamId}`
  }

  private channel (sessionId: string, streamId: string): string {
    return `${this.prefix}en:${sessionId}:${streamId}`
  }

  async open (sessionId: string, streamId: string): Promise<void> {
    const ttl = this.retention.maxAgeMs
    await guard('event', this.redis.multi()
      .sadd(this.indexKey(sessionId), streamId).pexpire(this.indexKey(sessionId), ttl)
      .hsetnx(this.lastKey(sessionId), streamId, 0).pexpire(this.lastKey(sessionId), ttl)
      .exec())
  }

  async append (sessionId: string, streamId: string, event: StoredEvent, options: AppendOptions = {}): Promise<void> {
    await this.batcher.append(this.keys(sessionId, streamId), streamId, event, options.anyPosition === true, options.owner ?? '')
  }

  async replay (sessionId: string, streamId: string, afterSeq: number): Promise<ReplayResult> {
    const key = this.streamKey(sessionId, streamId)
    const results = await guard('event', this.redis.pipeline()
      .hget(this.lastKey(sessionId), streamId)
      .xrange(key, '-', '+', 'COUNT', 1)
      .xrange(key, `(${afterSeq}-0`, '+')
      .exec())
    const last = results?.[0]?.[1] as string | null
    if (last == null) return { kind: 'unknown' }
    const first = results?.[1]?.[1] as Array<[string, string[]]>
    const entries = results?.[2]?.[1] as Array<[string, string[]]>
    const firstSeq = first.length > 0 ? seqOf(first[0]?.[0] as string) : Number(last) + 1
    if (afterSeq + 1 < firstSeq) return { kind: 'trimmed' }
    return { kind: 'events', events: entries.map(([id, fields]) => toEvent(id, fields)) }
  }

  async lastSeq (sessionId: string, streamId: string): Promise<number | undefined> {
    const last = await guard('event', this.redis.hget(this.lastKey(sessionId), streamId))
    return last === null ? undefined : Number(last)
  }

  async deleteSession (sessionId: string): Promise<void> {
    const streams = await guard('event', this.redis.smembers(this.indexKey(sessionId)))
    const keys = streams.flatMap((id) => [this.streamKey(sessionId, id), this.leaseKey(sessionId, id), this.followKey(sessionId, id)])
    await guard('event', this.redis.del(this.indexKey(sessionId), this.lastKey(sessionId), ...keys))
  }

  /** Walks this prefix's streams (SCAN): meant for metrics scrapes, not for request paths. */
  async stats (): Promise<{ events: number, bytes: number, streams: number }> {
    let events = 0
    let streams = 0
    let cursor = '0'
    do {
      const [next, keys] = await guard('event', this.redis.scan(cursor, 'MATCH', `${this.prefix}e:*`, 'COUNT', 500))
      cursor = next
      if (keys.length > 0) {
        const pipeline = this.redis.pipeline()
        for (const key of keys) pipeline.xlen(key)
        const lengths = await guard('event', pipeline.exec())
        for (const [, length] of lengths ?? []) events += Number(length)
        streams += keys.length
      }
    } while (cursor !== '0')
    // Bytes are not tracked on Redis (no cheap per-session byte count); 0 keeps gauges sane.
    return { events, bytes: 0, streams }
  }

  async claim (sessionId: string, streamId: string, owner: string, leaseMs: number, pending?: Array<string | number>, soon = false): Promise<boolean> {
    return await this.batcher.claim(this.keys(sessionId, streamId), streamId, owner, leaseMs, pending === undefined ? '' : JSON.stringify(pending), soon)
  }

  async renew (owner: string, leaseMs: number, owned: StreamRef[], followed: StreamRef[]): Promise<void> {
    if (owned.length === 0 && followed.length === 0) return
    const pipeline = this.redis.pipeline()
    for (const [sessionId, streamId] of owned) {
      (pipeline as unknown as Scripts).mcpGatewayRenew(this.leaseKey(sessionId, streamId), owner, leaseMs)
    }
    for (const [sessionId, streamId] of followed) pipeline.set(this.followKey(sessionId, streamId), owner, 'PX', leaseMs)
    await guard('event', pipeline.exec())
  }

  async release (sessionId: string, streamId: string, owner: string, done: boolean, lastSeq?: number): Promise<boolean> {
    return await this.batcher.release(this.keys(sessionId, streamId), streamId, owner, done, lastSeq)
  }

  async noteUpstreamEventId (sessionId: string, streamId: string, upstreamEventId: string): Promise<void> {
    await guard('event', this.redis.hset(this.lastKey(sessionId), `${streamId}|u`, upstreamEventId))
  }

  async status (sessionId: string, streamId: string): Promise<StreamStatus | undefined> {
    const results = await guard('event', this.redis.pipeline()
      .hmget(this.lastKey(sessionId), streamId, `${streamId}|d`, `${streamId}|u`, `${streamId}|p`)
      .get(this.leaseKey(sessionId, streamId))
      .exec())
    const [last, done, upstreamEventId, pending] = results?.[0]?.[1] as Array<string | null>
    if (last == null) return undefined
    const owner = results?.[1]?.[1] as string | null
    return {
      lastSeq: Number(last),
      owner: owner ?? undefined,
      done: done === '1',
      upstreamEventId: upstreamEventId ?? undefined,
      pending: pending == null ? [] : JSON.parse(pending) as Array<string | number>
    }
  }

  async followed (sessionId: string, streamId: string): Promise<boolean> {
    return await guard('event', this.redis.exists(this.followKey(sessionId, streamId))) === 1
  }

  watch (sessionId: string, streamId: string, listener: Listener): () => void {
    const channel = this.channel(sessionId, streamId)
    let set = this.listeners.get(channel)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(channel, set)
      // Failures are covered by the followers' polling; the subscriber resubscribes on reconnect.
      this.subscriberClient().subscribe(channel).catch(() => {})
    }
    set.add(listener)
    return () => {
      const current = this.listeners.get(channel)
      if (current === undefined || !current.delete(listener) || current.size > 0) return
      this.listeners.delete(channel)
      this.subscriber?.unsubscribe(channel).catch(() => {})
    }
  }

  private subscriberClient (): Redis {
    if (this.subscriber === undefined) {
      // Its own queue: a subscribe issued while Redis is away is sent when it returns.
      const subscriber = this.redis.duplicate({ enableOfflineQueue: true })
      subscriber.on('error', () => {})
      subscriber.on('message', (channel: string, message: string) => {
        const done = message.endsWith('d')
        const seq = Number(done ? message.slice(0, -1) : message)
        for (const listener of this.listeners.get(channel) ?? []) listener(seq, done)
      })
      this.subscriber = subscriber
    }
    return this.subscriber
  }

  async close (): Promise<void> {
    await this.batcher.sendHeld()
    this.listeners.clear()
    this.subscriber?.disconnect()
    this.subscriber = undefined
  }
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
