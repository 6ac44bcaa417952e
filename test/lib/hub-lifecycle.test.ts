/**
 * What the stream hub does with a session that ends while its streams are still busy, and with a
 * stream the shared log will not let it own.
 */
import t from 'tap'
import { MemoryEventStore } from '../../lib/events/memory-store.ts'
import type { SharedLog, StreamStatus } from '../../lib/events/store.ts'
import { STREAMING_DEFAULTS, StreamHub } from '../../lib/streams/hub.ts'
import type { Logger } from '../../lib/logger.ts'

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }

/** A memory store posing as a shared log whose lease calls are the test's (the rest do nothing). */
function withSharedLog (calls: Partial<SharedLog>): MemoryEventStore {
  const store = new MemoryEventStore()
  const shared: SharedLog = {
    claim: async () => true,
    renew: async () => {},
    release: async () => true,
    noteUpstreamEventId: async () => {},
    status: async (): Promise<StreamStatus | undefined> => undefined,
    followed: async () => false,
    watch: () => () => {},
    ...calls
  }
  Object.defineProperty(store, 'shared', { value: shared })
  return store
}

t.test('an ended session\'s streams stop first: nothing they publish afterwards brings its log back', async (t) => {
  const store = new MemoryEventStore()
  const hub = new StreamHub(store, STREAMING_DEFAULTS, quiet)
  t.teardown(() => hub.closeAll())
  const post = hub.openPostStream('s1', quiet, [1])
  const get = await hub.getStream('s1', quiet)
  post.publish('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}')
  get.publish('{"jsonrpc":"2.0","method":"notifications/message","params":{}}')
  await hub.endSession('s1')
  t.same(await store.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'the log is gone')
  // What a stream still finishing does: an error for its unanswered request, then complete.
  post.publish('{"jsonrpc":"2.0","id":1,"error":{"code":-32065,"message":"ended"}}')
  get.publish('{"jsonrpc":"2.0","method":"notifications/message","params":{}}')
  await post.finish()
  await get.settle()
  t.same(await store.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'still gone: nothing recreated it')
  t.equal((await store.replay('s1', post.id, 0)).kind, 'unknown')
})

t.test('a POST stream whose claim the shared log refuses is not owned: its lease is neither renewed nor released', async (t) => {
  const released: string[] = []
  const renewed: string[] = []
  const store = withSharedLog({
    claim: async () => false,
    renew: async (_owner, _lease, owned) => { for (const [, id] of owned) renewed.push(id) },
    release: async (_session, streamId) => { released.push(streamId); return true }
  })
  const hub = new StreamHub(store, { ...STREAMING_DEFAULTS, leaseMs: 150 }, quiet)
  t.teardown(() => hub.closeAll())
  const stream = hub.openPostStream('s1', quiet, [1])
  await stream.settle()
  t.equal(stream.owned, false, 'another instance holds it')
  await stream.finish()
  t.same(released, [], 'never released another instance\'s lease')
  t.same(renewed, [], 'never renewed it')
})

t.test('a follower whose store fails while it catches a client up: no unhandled rejection, the client stream ends to resume', async (t) => {
  class FailingReplay extends MemoryEventStore {
    failing = false
    override async replay (...args: Parameters<MemoryEventStore['replay']>): ReturnType<MemoryEventStore['replay']> {
      if (this.failing) throw Object.assign(new Error('Service Unavailable: the gateway\'s event store cannot be reached'), { code: 'MCP_GW_STORE_UNAVAILABLE' })
      return await super.replay(...args)
    }
  }
  const store = new FailingReplay()
  const hub = new StreamHub(store, STREAMING_DEFAULTS, quiet)
  t.teardown(() => hub.closeAll())
  const stream = await hub.getStream('s1', quiet)
  const written: string[] = []
  let ended = false
  const sink = Object.assign(new (await import('node:events')).EventEmitter(), {
    writableLength: 0,
    destroyed: false,
    write (chunk: string) { written.push(chunk); return true },
    end () { ended = true },
    destroy () {}
  })
  const writer = hub.writer(sink, stream.id, 0)
  await stream.attach(writer)
  store.failing = true
  // Another instance logged events 1..3: the follower replays them from the store, which fails.
  stream.follow(3, false)
  for (let i = 0; i < 50 && writer.ended === undefined; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(writer.ended, 'done', 'the client\'s stream ended')
  t.ok(ended, 'the socket was ended')
  t.match(written.join(''), /retry: 1000/, 'with a retry hint, so the client resumes')
})

t.test('after a session ended, a late POST stream is born closed and a GET stream is refused: its log stays gone', async (t) => {
  const store = new MemoryEventStore()
  const hub = new StreamHub(store, STREAMING_DEFAULTS, quiet)
  t.teardown(() => hub.closeAll())
  hub.openPostStream('s1', quiet, [1])
  await hub.endSession('s1')
  const late = hub.openPostStream('s1', quiet, [2])
  t.equal(late.closed, true, 'born closed')
  late.publish('{"jsonrpc":"2.0","id":2,"result":{}}')
  await late.finish()
  t.same(await store.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'nothing logged, no stream opened')
  await t.rejects(hub.getStream('s1', quiet), { code: 'MCP_GW_SESSION_NOT_FOUND' })
  t.equal((await hub.getStream('s2', quiet)).closed, false, 'other sessions are untouched')
})

t.test('a shutdown release before a new stream\'s claim has answered still releases the lease once it does', async (t) => {
  const released: string[] = []
  let answerClaim: (mine: boolean) => void = () => {}
  const store = withSharedLog({
    claim: async () => await new Promise<boolean>((resolve) => { answerClaim = resolve }),
    release: async (_session, streamId) => { released.push(streamId); return true }
  })
  const hub = new StreamHub(store, STREAMING_DEFAULTS, quiet)
  const stream = hub.openPostStream('s1', quiet, [1])
  const closing = hub.closeAll()
  answerClaim(true)
  await closing
  t.same(released, [stream.id], 'the lease taken is given back, so another instance takes the stream over at once')
})
