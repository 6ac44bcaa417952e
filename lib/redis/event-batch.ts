/**
 * A logged stream's writes to Redis, one script call per stream per tick: a POST stream's claim,
 * its appends and its release, issued by the gateway in the same tick (a quick tool call's answer
 * usually is: its response and the end of its stream arrive together), run as one script in the
 * order they were issued. Each write still settles on its own. Fewer commands is what makes the
 * shared log cost near what the in-memory one does: every command is a script run on Redis and
 * an encode, a parse and a promise in the gateway.
 *
 * Writes of different ticks go in order too: ioredis sends commands in the order they are made,
 * on one connection, and Redis runs them in that order.
 */
import type { Redis } from 'ioredis'
import type { StoredEvent } from '../events/store.ts'
import { GatewayErrors } from '../errors.ts'
import { guard } from './guard.ts'

// KEYS: stream, index, last, channel, lease. ARGV: stream id, maxlen, ttl, then the writes, each
// a letter and its arguments: c (claim) owner, lease ms, pending ('' for none); a (append) seq,
// data, at, upstream event id ('' for none), in order ('1': the one before it is logged or given
// up, so any position goes; '0': only the next one), owner ('' for any); r (release) owner, done
// ('1' or '0'), the stream's last position ('' for any).
// Results, one per write: claim 1 (held) or 0 (another owner's lease holds it); append 1 (logged),
// 2 (this position is logged already: a resend), -2 (not the next position: an earlier event is
// still to land; sent again in order) or a refusal as a string (the stream's own, or another
// owner's lease holding it: an instance that lost the stream never writes into it); release 1, or -2 (an
// event before the last position is still to land: nothing changed, it is sent again after them).
// Appends go in order because events are sent when published, before earlier ones are known to
// have landed: one that failed and is retried must not find a later one logged before it.
// Followers hear the last position appended (with "d" when the stream completed).
const BATCH = `
local sid, maxlen, ttl = ARGV[1], ARGV[2], ARGV[3]
local results = {}
local appended = nil
local completed = false
local touched = false
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'c' then
    local current = redis.call('GET', KEYS[5])
    if current and current ~= ARGV[i + 1] then
      results[#results + 1] = 0
    else
      redis.call('SET', KEYS[5], ARGV[i + 1], 'PX', ARGV[i + 2])
      redis.call('HSETNX', KEYS[3], sid, 0)
      if ARGV[i + 3] ~= '' then redis.call('HSET', KEYS[3], sid .. '|p', ARGV[i + 3]) end
      results[#results + 1] = 1
    end
    touched = true
    i = i + 4
  elseif op == 'a' then
    local seq, u, owner = tonumber(ARGV[i + 1]), ARGV[i + 4], ARGV[i + 6]
    local last = redis.call('HGET', KEYS[3], sid)
    local holder = owner ~= '' and redis.call('GET', KEYS[5])
    if holder and holder ~= owner then
      results[#results + 1] = 'another instance holds this stream'
    elseif last and seq <= tonumber(last) then
      results[#results + 1] = 2
    elseif last and ARGV[i + 5] ~= '1' and seq ~= tonumber(last) + 1 then
      results[#results + 1] = -2
    else
      local added
      if u ~= '' then
        added = redis.pcall('XADD', KEYS[1], 'MAXLEN', maxlen, seq .. '-0', 'd', ARGV[i + 2], 'a', ARGV[i + 3], 'u', u)
      else
        added = redis.pcall('XADD', KEYS[1], 'MAXLEN', maxlen, seq .. '-0', 'd', ARGV[i + 2], 'a', ARGV[i + 3])
      end
      if type(added) == 'table' and added.err then
        results[#results + 1] = added.err
      else
        if u ~= '' then redis.call('HSET', KEYS[3], sid, seq, sid .. '|u', u) else redis.call('HSET', KEYS[3], sid, seq) end
        appended = seq
        touched = true
        results[#results + 1] = 1
      end
    end
    i = i + 7
  else
    local last = redis.call('HGET', KEYS[3], sid)
    if ARGV[i + 3] ~= '' and last and tonumber(last) < tonumber(ARGV[i + 3]) then
      results[#results + 1] = -2
    else
      -- Another owner's lease is never dropped, nor its stream marked complete; a deleted
      -- session's stream is not brought back to be completed.
      local current = redis.call('GET', KEYS[5])
      if current == ARGV[i + 1] then redis.call('DEL', KEYS[5]) end
      if ARGV[i + 2] == '1' and last and (not current or current == ARGV[i + 1]) then
        redis.call('HSET', KEYS[3], sid .. '|d', 1)
        completed = true
      end
      results[#results + 1] = 1
    end
    i = i + 4
  end
end
if touched then
  redis.call('SADD', KEYS[2], sid)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if appended then redis.call('PEXPIRE', KEYS[1], ttl) end
if completed then
  redis.call('PUBLISH', KEYS[4], (redis.call('HGET', KEYS[3], sid) or '0') .. 'd')
elseif appended then
  redis.call('PUBLISH', KEYS[4], appended)
end
return results
`

interface Write {
  args: Array<string | number>
  resolve: (result: number | string) => void
  reject: (err: unknown) => void
}

interface Batch {
  keys: [string, string, string, string, string]
  streamId: string
  writes: Write[]
  /** A claim waiting for the stream's first append (see `claim`). */
  waiting: NodeJS.Timeout | undefined
}

/**
 * How long a new POST stream's claim waits for the stream's first event to go with it: an answer
 * that comes at once (most do) then costs one script call, not two, and its client one round trip.
 * A slower answer's claim goes alone after this, and its client gets its resume point then.
 */
export const CLAIM_WAIT_MS = 10

interface BatchScript {
  mcpGatewayBatch (stream: string, index: string, last: string, channel: string, lease: string, streamId: string, maxLen: number, ttl: number, ...writes: Array<string | number>): Promise<Array<number | string>>
}

export interface StreamKeys {
  stream: string
  index: string
  last: string
  channel: string
  lease: string
}

export class StreamBatcher {
  private readonly redis: Redis
  private readonly maxLen: number
  private readonly ttl: number
  private batches = new Map<string, Batch>()
  private scheduled = false

  constructor (redis: Redis, maxLen: number, ttl: number) {
    this.redis = redis
    this.maxLen = maxLen
    this.ttl = ttl
    redis.defineCommand('mcpGatewayBatch', { numberOfKeys: 5, lua: BATCH })
  }

  /** `wait`: hold the claim up to `CLAIM_WAIT_MS` for the stream's next write (a new POST stream's first event). */
  async claim (keys: StreamKeys, streamId: string, owner: string, leaseMs: number, pending: string, wait = false): Promise<boolean> {
    return await this.add(keys, streamId, ['c', owner, leaseMs, pending], wait) === 1
  }

  /**
   * `anyPosition`: the event before this one is logged or given up (a retry: appends are retried
   * in order), so the log takes it wherever its stream stands.
   */
  async append (keys: StreamKeys, streamId: string, event: StoredEvent, anyPosition: boolean, owner: string): Promise<void> {
    const result = await this.add(keys, streamId, ['a', event.seq, event.data, event.at, event.upstreamEventId ?? '', anyPosition ? '1' : '0', owner])
    if (result === 1 || result === 2) return
    if (result === -2) throw new GatewayErrors.STORE_UNAVAILABLE('event', { cause: new Error(`event ${event.seq} of stream ${streamId} arrived before an earlier one`) })
    throw Object.assign(new Error(`the event log refused event ${event.seq} of stream ${streamId}: ${String(result)}`), { final: true })
  }

  /** False when an event before `lastSeq` is still to land: nothing was changed (send it again after them). */
  async release (keys: StreamKeys, streamId: string, owner: string, done: boolean, lastSeq: number | undefined): Promise<boolean> {
    return await this.add(keys, streamId, ['r', owner, done ? '1' : '0', lastSeq ?? '']) === 1
  }

  private add (keys: StreamKeys, streamId: string, args: Array<string | number>, wait = false): Promise<number | string> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(keys.stream) ?? this.held.get(keys.stream)
      if (batch === undefined) {
        batch = { keys: [keys.stream, keys.index, keys.last, keys.channel, keys.lease], streamId, writes: [], waiting: undefined }
      }
      batch.writes.push({ args, resolve, reject })
      if (wait && batch.writes.length === 1) {
        this.held.set(keys.stream, batch)
        batch.waiting = setTimeout(() => { this.due(keys.stream, batch) }, CLAIM_WAIT_MS)
        batch.waiting.unref()
        return
      }
      this.due(keys.stream, batch)
    })
  }

  /** Batches held for a stream's next write (a claim waiting for its first event). */
  private readonly held = new Map<string, Batch>()

  /** The batch goes with this tick's others. */
  private due (key: string, batch: Batch): void {
    if (batch.waiting !== undefined) {
      clearTimeout(batch.waiting)
      batch.waiting = undefined
      this.held.delete(key)
    }
    this.batches.set(key, batch)
    if (!this.scheduled) {
      this.scheduled = true
      // After this tick's I/O callbacks and their promise jobs: what they wrote goes in one call.
      setImmediate(() => { void this.flush() })
    }
  }

  /** Sends every batch due; resolves once Redis has answered them all (failures are their writes'). */
  private flush (): Promise<void> {
    const batches = this.batches
    this.batches = new Map()
    this.scheduled = false
    const script = this.redis as unknown as BatchScript
    const sent: Array<Promise<void>> = []
    for (const batch of batches.values()) {
      const args = batch.writes.flatMap((write) => write.args)
      sent.push(guard('event', script.mcpGatewayBatch(...batch.keys, batch.streamId, this.maxLen, this.ttl, ...args)).then((results) => {
        for (const [index, write] of batch.writes.entries()) {
          const result = results[index]
          write.resolve(typeof result === 'number' ? result : String(result))
        }
      }, (err: unknown) => {
        for (const write of batch.writes) write.reject(err)
      }))
    }
    return Promise.all(sent).then(() => {})
  }

  /** Sends what is held and due now, and resolves once answered (close: nothing is left behind). */
  async sendHeld (): Promise<void> {
    for (const [key, batch] of [...this.held]) this.due(key, batch)
    await this.flush()
  }
}
