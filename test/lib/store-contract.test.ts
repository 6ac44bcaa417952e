/**
 * One contract for every store: the memory stores and the Redis stores answer alike, so the Redis
 * ones drop in wherever the memory ones are used.
 */
import t from 'tap'
import { MemoryEventStore } from '../../lib/events/memory-store.ts'
import type { EventStore, Retention } from '../../lib/events/store.ts'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { RedisSessionStore } from '../../lib/redis/session-store.ts'
import { MemorySessionStore } from '../../lib/session/memory-store.ts'
import type { SessionRecord, SessionStore } from '../../lib/session/store.ts'
import { redisClient, skipWithoutRedis } from '../helpers/redis.ts'

type Teardown = { teardown (fn: () => unknown): void }

interface Kind {
  name: string
  sessions: (t: Teardown) => Promise<SessionStore>
  events: (t: Teardown, retention: Partial<Retention>) => Promise<EventStore>
}

const kinds: Kind[] = [
  { name: 'memory', sessions: async () => new MemorySessionStore(), events: async (_t, retention) => new MemoryEventStore(retention) },
  {
    name: 'redis',
    sessions: async (t) => {
      const { client, prefix } = await redisClient(t)
      const store = new RedisSessionStore({ client, keyPrefix: prefix })
      t.teardown(() => store.close())
      return store
    },
    events: async (t, retention) => {
      const { client, prefix } = await redisClient(t)
      return new RedisEventStore({ client, keyPrefix: prefix, retention })
    }
  }
]

const record = (id: string, at: number, extra: Partial<SessionRecord> = {}): SessionRecord => ({
  id,
  upstream: 'u',
  upstreamSessionId: `up-${id}`,
  protocolVersion: '2025-11-25',
  clientInfo: { name: 'c', version: '1' },
  clientCapabilities: { elicitation: { form: {} } },
  createdAt: at,
  lastSeenAt: at,
  ...extra
})

const seqs = (result: Awaited<ReturnType<EventStore['replay']>>): number[] | string =>
  result.kind === 'events' ? result.events.map((e) => e.seq) : result.kind

for (const kind of kinds) {
  t.test(`${kind.name} session store`, { skip: kind.name === 'redis' ? await skipWithoutRedis() : false }, async (t) => {
    const store = await kind.sessions(t)
    await store.create(record('a', 1000))
    await store.create(record('b', 2000, { upstreamSessionId: null }))
    t.same(await store.get('a'), record('a', 1000))
    t.equal((await store.get('b'))?.upstreamSessionId, null)
    t.equal(await store.get('zz'), undefined)
    t.equal(await store.size(), 2)

    await store.touch('a', 5000)
    t.equal((await store.get('a'))?.lastSeenAt, 5000)
    await store.touch('gone', 5000)
    t.equal(await store.get('gone'), undefined, 'touch does not create')

    const updated = await store.update('a', { protocolVersion: '2025-06-18' })
    t.equal(updated?.protocolVersion, '2025-06-18')
    t.same(updated?.clientCapabilities, { elicitation: { form: {} } }, 'the rest is kept')
    t.equal(await store.update('zz', { protocolVersion: 'x' }), undefined)

    t.same((await store.listExpired(3000, 0, 10)).map((r) => r.id), ['b'], 'idle')
    t.same((await store.listExpired(0, 1500, 10)).map((r) => r.id), ['a'], 'too old')
    t.same((await store.listExpired(9000, 0, 1)).length, 1, 'limited')
    t.same((await store.list(10)).map((r) => r.id), ['a', 'b'], 'listed: seen last first')
    t.same((await store.list(1)).map((r) => r.id), ['a'], 'listed: limited')

    t.equal(await store.delete('a'), true)
    t.equal(await store.delete('a'), false)
    t.equal(await store.get('a'), undefined)
    t.equal(await store.size(), 1)
    await store.close()
  })

  t.test(`${kind.name} event store`, { skip: kind.name === 'redis' ? await skipWithoutRedis() : false }, async (t) => {
    const store = await kind.events(t, { maxEventsPerStream: 3 })
    const ev = (seq: number, upstreamEventId?: string) => ({ seq, data: `{"n":${seq}}`, at: Date.now(), ...(upstreamEventId === undefined ? {} : { upstreamEventId }) })
    t.equal(await store.lastSeq('s', 'p1'), undefined, 'unknown stream: no last position')
    await store.open('s', 'p1')
    t.same(seqs(await store.replay('s', 'p1', 0)), [], 'an opened stream is known and empty')
    t.equal(await store.lastSeq('s', 'p1'), 0)
    for (let i = 1; i <= 5; i++) await store.append('s', 'p1', ev(i, i === 5 ? 'up-5' : undefined))
    await store.append('s', 'g', ev(1))
    t.same(seqs(await store.replay('s', 'p1', 2)), [3, 4, 5])
    t.equal(await store.lastSeq('s', 'p1'), 5, 'the last position survives trimming')
    t.same(seqs(await store.replay('s', 'p1', 5)), [])
    const replayed = await store.replay('s', 'p1', 4)
    t.same(replayed.kind === 'events' ? replayed.events[0] : undefined, { seq: 5, data: '{"n":5}', at: replayed.kind === 'events' ? replayed.events[0]?.at : 0, upstreamEventId: 'up-5' })
    t.same(seqs(await store.replay('s', 'p1', 1)), 'trimmed', 'count retention')
    t.same(seqs(await store.replay('s', 'g', 0)), [1])
    t.same(seqs(await store.replay('s', 'zz', 0)), 'unknown')
    t.same(seqs(await store.replay('other', 'p1', 0)), 'unknown', 'another session')
    const stats = await store.stats()
    t.equal(stats.events, 4)
    t.equal(stats.streams >= 2, true)
    await store.deleteSession('s')
    t.same(seqs(await store.replay('s', 'p1', 0)), 'unknown', 'deleted with its session')
    t.same(seqs(await store.replay('s', 'g', 0)), 'unknown')
    await store.close()
  })
}

t.test('redis: two store instances share one view (two gateways, one Redis)', { skip: await skipWithoutRedis() }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const other = (await redisClient(t)).client
  const a = new RedisSessionStore({ client, keyPrefix: prefix })
  const b = new RedisSessionStore({ client: other, keyPrefix: prefix })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  await a.create(record('x', 1))
  t.equal((await b.get('x'))?.upstreamSessionId, 'up-x')
  await Promise.all([b.update('x', { protocolVersion: '2025-03-26' }), a.update('x', { clientInfo: { name: 'renamed' } })])
  const merged = await a.get('x')
  t.equal(merged?.protocolVersion, '2025-03-26', 'neither update is lost')
  t.same(merged?.clientInfo, { name: 'renamed' })
  const ea = new RedisEventStore({ client, keyPrefix: prefix })
  const eb = new RedisEventStore({ client: other, keyPrefix: prefix })
  await ea.append('x', 'p', { seq: 1, data: 'one', at: 1 })
  t.same(seqs(await eb.replay('x', 'p', 0)), [1])

  // The request path's cache: a session ended on one instance is gone on the other at once.
  await a.create(record('y', 1))
  t.equal((await a.getAndTouch('y', Date.now()))?.id, 'y')
  t.equal((await a.getAndTouch('y', Date.now()))?.id, 'y', 'served from the cache')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(await b.delete('y'))
  await eventually(async () => await a.getAndTouch('y', Date.now()) === undefined, 2000)
  // "Seen" times reach Redis in batches: within cacheMs, and before this instance's own sweep.
  await a.create(record('z', 1))
  await a.touch('z', 5000)
  t.same((await a.listExpired(3000, 0, 10)).map((r) => r.id), ['x'], 'z was seen at 5000')
  await a.touch('z', 7000)
  await eventually(async () => (await b.listExpired(6000, 0, 10)).length === 1, 2000)
  t.same((await b.listExpired(8000, 0, 10)).map((r) => r.id), ['x', 'z'])
})

async function eventually (check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (!await check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('redis: the request path\'s record cache is bounded (least recently used go first)', { skip: await skipWithoutRedis() }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisSessionStore({ client, keyPrefix: prefix, cacheMax: 3 })
  t.teardown(() => store.close())
  for (let i = 0; i < 10; i++) {
    await store.create(record(`c${i}`, 1))
    t.equal((await store.getAndTouch(`c${i}`, Date.now()))?.id, `c${i}`)
  }
  const cache = (store as unknown as { cache: { size: number } }).cache
  t.equal(cache.size, 3, 'ten sessions read, three cached')
  t.equal((await store.getAndTouch('c9', Date.now()))?.id, 'c9', 'a recent one is still served')
})
