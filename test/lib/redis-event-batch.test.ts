/**
 * The shared log's writes of one stream and one tick as one script call, on a real Redis: a POST
 * stream's claim waits for its first event, then claim, appends and release run in one call, in
 * order; each still settles on its own (a claim another owner holds, an append the stream
 * refuses), and another owner's lease is never dropped nor its stream completed.
 */
import t from 'tap'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { CLAIM_WAIT_MS } from '../../lib/redis/event-batch.ts'
import { countScripts, redisClient, skipWithoutRedis } from '../helpers/redis.ts'
import { PassThrough } from 'node:stream'
import { LiveStream } from '../../lib/streams/live-stream.ts'
import { ClientWriter } from '../../lib/streams/client-writer.ts'
import type { AppendOptions, EventStore, StoredEvent } from '../../lib/events/store.ts'

const skip = await skipWithoutRedis()

const event = (seq: number) => ({ seq, data: `{"n":${seq}}`, at: Date.now() })

t.test('a claim waiting for its first event, its appends and its release: one script call, in order', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.claim('s', 'warm', 'me', 5000) // loads the script: the count below is of calls only
  const sent = countScripts(client)
  const claimed = store.claim('s', 'p1', 'me', 5000, [1], true)
  // The first event comes later than this tick, sooner than the claim's wait.
  await new Promise((resolve) => setImmediate(resolve))
  const writes = [store.append('s', 'p1', event(1)), store.append('s', 'p1', event(2)), store.release('s', 'p1', 'me', true)]
  t.equal(await claimed, true)
  await Promise.all(writes)
  t.equal(sent(), 1, 'one call for the claim, two appends and the release')
  t.match(await store.status('s', 'p1'), { lastSeq: 2, owner: undefined, done: true, pending: [1] })
  const replayed = await store.replay('s', 'p1', 0)
  t.same(replayed.kind === 'events' ? replayed.events.map((e) => e.seq) : replayed, [1, 2])
})

t.test('a claim with no event coming goes alone once its wait is over', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  const started = Date.now()
  t.equal(await store.claim('s', 'slow', 'me', 5000, undefined, true), true)
  t.ok(Date.now() - started >= CLAIM_WAIT_MS - 1, 'held for the first event, then sent')
  t.match(await store.status('s', 'slow'), { lastSeq: 0, owner: 'me' })
})

t.test('each write settles on its own; another owner\'s lease is neither dropped nor completed', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  t.equal(await store.claim('s', 'theirs', 'other', 5000), true)
  await store.append('s', 'theirs', event(1))
  const writes = [
    store.claim('s', 'theirs', 'me', 5000),
    store.append('s', 'theirs', event(1)),
    store.append('s', 'theirs', event(2)),
    store.release('s', 'theirs', 'me', true)
  ]
  const [claim, resent, next, release] = await Promise.allSettled(writes)
  t.same(claim, { status: 'fulfilled', value: false }, 'the claim: another owner holds it')
  t.equal(resent?.status, 'fulfilled', 'an event sent again at a position already logged is taken as done')
  t.equal(next?.status, 'fulfilled', 'the writes after it in the same call go on')
  t.same(release, { status: 'fulfilled', value: true })
  t.match(await store.status('s', 'theirs'), { lastSeq: 2, owner: 'other', done: false }, 'their lease stands; the stream is not completed')
})

t.test('appends land in order: one ahead of a missing event waits for it; a release waits for them all', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  t.equal(await store.claim('s', 'p', 'me', 5000), true)
  await store.append('s', 'p', event(1))
  // Event 2 failed on its way (a blip); 3 was sent right behind it, and the release behind that.
  const [ahead, early] = await Promise.allSettled([store.append('s', 'p', event(3)), store.release('s', 'p', 'me', true, 3)])
  t.match(ahead, { status: 'rejected', reason: { code: 'MCP_GW_STORE_UNAVAILABLE' } }, 'refused: 2 is not logged yet (retryable)')
  t.same(early, { status: 'fulfilled', value: false }, 'the release changes nothing while an event before it is missing')
  t.match(await store.status('s', 'p'), { lastSeq: 1, owner: 'me', done: false }, 'the lease stands, the stream goes on')
  // The retries, in order.
  await store.append('s', 'p', event(2), { anyPosition: true })
  await store.append('s', 'p', event(3), { anyPosition: true })
  t.equal(await store.release('s', 'p', 'me', true, 3), true)
  t.match(await store.status('s', 'p'), { lastSeq: 3, owner: undefined, done: true })
  const replayed = await store.replay('s', 'p', 0)
  t.same(replayed.kind === 'events' ? replayed.events.map((e) => e.seq) : replayed, [1, 2, 3], 'no gap, in order')
})

t.test('an append the stream refuses for good says why, and is final (no retry)', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.claim('s', 'broken', 'me', 5000)
  await client.set(`${prefix}e:s:broken`, 'not a stream')
  await t.rejects(store.append('s', 'broken', event(1)), { final: true, message: /refused event 1 of stream broken: WRONGTYPE/ })
})

t.test('a release after the session was deleted brings none of its keys back', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.claim('s', 'gone', 'me', 5000)
  await store.append('s', 'gone', event(1))
  await store.deleteSession('s')
  await store.release('s', 'gone', 'me', true)
  t.same(await client.keys(`${prefix}*`), [], 'nothing of the session is left')
})

t.test('a logged stream whose first append fails once: events land in order, and the stream completes after them', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const inner = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => inner.close())
  // The real store, but the first try of event 1 is lost on its way (a blip); every other write goes through.
  let lost = false
  const store: EventStore = Object.assign(Object.create(inner) as RedisEventStore, {
    append: async (sessionId: string, streamId: string, stored: StoredEvent, options?: AppendOptions) => {
      if (stored.seq === 1 && !lost) {
        lost = true
        throw new Error('connection reset')
      }
      await inner.append(sessionId, streamId, stored, options)
    }
  })
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  t.equal(await inner.claim('s', 'p', 'me', 5000), true)
  const stream = new LiveStream({ store, owner: 'me', now: Date.now, log: quiet, counts: { replayed: 0 }, retryMs: 1000 }, 's', 'p')
  stream.owned = true
  stream.publish('{"n":1}')
  stream.publish('{"n":2}')
  await stream.finish()
  t.ok(lost)
  t.match(await inner.status('s', 'p'), { lastSeq: 2, done: true, owner: undefined })
  const replayed = await inner.replay('s', 'p', 0)
  t.same(replayed.kind === 'events' ? replayed.events.map((e) => e.data) : replayed, ['{"n":1}', '{"n":2}'], 'both logged, in order: a client resuming from 0 gets them')
})

/** A LiveStream on `store`, owned by 'me', its stream claimed in the log. */
async function ownedStream (inner: RedisEventStore, store: EventStore, id: string): Promise<LiveStream> {
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  await inner.claim('s', id, 'me', 5000)
  const stream = new LiveStream({ store, owner: 'me', now: Date.now, log: quiet, counts: { replayed: 0 }, retryMs: 1000 }, 's', id)
  stream.owned = true
  return stream
}

t.test('an event the log never holds (given up): the next goes after it, and a resuming client skips the gap', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const inner = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => inner.close())
  const store: EventStore = Object.assign(Object.create(inner) as RedisEventStore, {
    append: async (sessionId: string, streamId: string, stored: StoredEvent, options?: AppendOptions) => {
      if (stored.seq === 2) throw new Error('connection reset')
      await inner.append(sessionId, streamId, stored, options)
    }
  })
  const stream = await ownedStream(inner, store, 'gap')
  for (const n of [1, 2, 3]) stream.publish(`{"n":${n}}`)
  await stream.finish()
  t.match(await inner.status('s', 'gap'), { lastSeq: 3, done: true })
  const replayed = await inner.replay('s', 'gap', 0)
  t.same(replayed.kind === 'events' ? replayed.events.map((e) => e.seq) : replayed, [1, 3], 'event 3 logged past the one given up')
  const sink = new PassThrough()
  let text = ''
  sink.on('data', (chunk: Buffer) => { text += chunk.toString() })
  const writer = new ClientWriter(sink as never, 'gap', 0, { highWaterMark: 1 << 20, now: Date.now(), onEnd: () => {} })
  t.equal(await stream.attach(writer), 'ok')
  writer.flush()
  t.same([...text.matchAll(/id: gap_(\d+)/g)].map((m) => Number(m[1])), [1, 3], 'a client resuming from the start gets what the log holds, in order')
  t.equal(writer.ended, 'done', 'and its stream ends: the answer is complete')
})

t.test('a release the store did not take is sent again once the stream\'s events are logged', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const inner = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => inner.close())
  let refused = false
  const shared = Object.assign(Object.create(inner) as RedisEventStore, {
    release: async (...args: Parameters<RedisEventStore['release']>) => {
      if (!refused) {
        refused = true
        throw new Error('connection reset')
      }
      return await inner.release(...args)
    }
  })
  const store: EventStore = Object.assign(Object.create(inner) as RedisEventStore, { shared })
  const stream = await ownedStream(inner, store, 'rel')
  stream.publish('{"n":1}')
  await stream.finish()
  t.ok(refused)
  t.match(await inner.status('s', 'rel'), { lastSeq: 1, done: true, owner: undefined }, 'completed and its lease given back all the same')
})

t.test('an instance whose stream another owns (taken over) writes nothing into it', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  t.equal(await store.claim('s', 'taken', 'b', 5000), true)
  await t.rejects(store.append('s', 'taken', event(1), { anyPosition: true, owner: 'a' }), { final: true, message: /another instance holds this stream/ })
  await store.append('s', 'taken', event(1), { owner: 'b' })
  t.match(await store.status('s', 'taken'), { lastSeq: 1, owner: 'b' })
})

t.test('an instance taking a stream over numbers on past every event it heard of', { skip }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisEventStore({ client, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.claim('s', 'over', 'other', 5000)
  await store.append('s', 'over', event(1), { owner: 'other' })
  const quiet = { debug () {}, info () {}, warn () {}, error () {} }
  // This instance follows from position 1; the other logs event 2 (heard of), then goes.
  const stream = new LiveStream({ store, owner: 'me', now: Date.now, log: quiet, counts: { replayed: 0 }, retryMs: 1000 }, 's', 'over', 1)
  await store.append('s', 'over', event(2), { owner: 'other' })
  stream.follow(2, false)
  await store.release('s', 'over', 'other', false)
  t.equal(await store.claim('s', 'over', 'me', 5000), true)
  stream.own(1) // from a status read before event 2
  stream.publish('{"mine":true}')
  await stream.finish()
  const replayed = await store.replay('s', 'over', 0)
  t.same(replayed.kind === 'events' ? replayed.events.map((e) => [e.seq, e.data]) : replayed, [[1, '{"n":1}'], [2, '{"n":2}'], [3, '{"mine":true}']], 'its event goes after theirs, not onto it')
})
