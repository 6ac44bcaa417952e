/**
 * The shared log's writes of one stream and one tick as one script call, on a real Redis: a POST
 * stream's claim waits for its first event, then claim, appends and release run in one call, in
 * order; each still settles on its own (a claim another owner holds, an append the stream
 * refuses), and another owner's lease is never dropped nor its stream completed.
 */
import t from 'tap'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { CLAIM_WAIT_MS } from '../../lib/redis/event-batch.ts'
import { redisClient, skipWithoutRedis } from '../helpers/redis.ts'

const skip = await skipWithoutRedis()

/** Counts the scripts this client sends (its own commands, whatever else uses the server). */
function countScripts (client: Awaited<ReturnType<typeof redisClient>>['client']): () => number {
  let sent = 0
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    if (command.name === 'evalsha' || command.name === 'eval') sent++
    return (send as (...args: unknown[]) => unknown)(command, ...rest)
  }) as typeof client.sendCommand
  return () => sent
}

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
  const [claim, stale, next, release] = await Promise.allSettled(writes)
  t.same(claim, { status: 'fulfilled', value: false }, 'the claim: another owner holds it')
  t.equal(stale?.status, 'rejected', 'an event at a position already logged is refused')
  t.match((stale as PromiseRejectedResult).reason, { code: 'MCP_GW_STORE_UNAVAILABLE' })
  t.equal(next?.status, 'fulfilled', 'the writes after it in the same call go on')
  t.equal(release?.status, 'fulfilled')
  t.match(await store.status('s', 'theirs'), { lastSeq: 2, owner: 'other', done: false }, 'their lease stands; the stream is not completed')
})
