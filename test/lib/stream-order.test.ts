/**
 * Order between a session's responses. A JSON answer leaves on its own response; what the session's GET stream received before it must
 * be on the client's socket first (a client drops progress it reads after the answer).
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { MemoryEventStore } from '../../lib/events/memory-store.ts'
import { STREAMING_DEFAULTS, StreamHub } from '../../lib/streams/hub.ts'
import type { Logger } from '../../lib/logger.ts'
import type { Sink } from '../../lib/streams/client-writer.ts'

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }

class RecordingSink extends EventEmitter implements Sink {
  readonly written: string[] = []
  readonly writableLength = 0
  readonly destroyed = false
  write (chunk: string): boolean {
    this.written.push(chunk)
    return true
  }

  end (): void {}
  destroy (): void {}
}

/** A memory store whose appends and stream openings wait until released. */
class HeldStore extends MemoryEventStore {
  held: Array<() => void> = []
  hold = false
  override async append (...args: Parameters<MemoryEventStore['append']>): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve))
    return await super.append(...args)
  }

  override async open (...args: Parameters<MemoryEventStore['open']>): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve))
    return await super.open(...args)
  }
}

async function setup (t: { teardown: (fn: () => unknown) => void }): Promise<{ hub: StreamHub, store: HeldStore, sink: RecordingSink, publish: (data: string) => void }> {
  const store = new HeldStore()
  const hub = new StreamHub(store, STREAMING_DEFAULTS, quiet)
  t.teardown(() => hub.closeAll())
  const stream = await hub.getStream('s1', quiet)
  const sink = new RecordingSink()
  const writer = hub.writer(sink, stream.id, 0)
  await stream.attach(writer)
  return { hub, store, sink, publish: (data) => stream.publish(data) }
}

const events = (sink: RecordingSink): string => sink.written.join('')

t.test('nothing being logged: what waits for the next tick is written at once', async (t) => {
  const { hub, sink, publish } = await setup(t)
  publish('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}')
  await new Promise((resolve) => process.nextTick(resolve))
  t.notMatch(events(sink), /progress/, 'a published event waits for the tick to end before it is written')
  t.equal(hub.settle('s1'), undefined, 'nothing to wait for')
  t.match(events(sink), /"progress":1/, 'written before the answer could be')
})

t.test('an append under way: the answer waits for it, then the event is written first', async (t) => {
  const { hub, store, sink, publish } = await setup(t)
  store.hold = true
  publish('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":2}}')
  const settled = hub.settle('s1')
  t.ok(settled instanceof Promise, 'the answer has to wait')
  let done = false
  void settled?.then(() => { done = true })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(done, 'held while the event is not logged')
  for (const release of store.held) release()
  await settled
  t.match(events(sink), /"progress":2/, 'on the socket when the answer may go')
})

t.test('a session without a GET stream here has nothing to wait for', async (t) => {
  const { hub } = await setup(t)
  t.equal(hub.settle('other'), undefined)
})

t.test('shutdown ends a stream only after its priming event, the client\'s resume point', async (t) => {
  const { hub, store } = await setup(t)
  store.hold = true
  const post = hub.openPostStream('s1', quiet)
  const sink = new RecordingSink()
  const writer = hub.writer(sink, post.id, 0)
  post.writer = writer
  post.after(() => writer.start(100, true, Date.now()))
  const closing = hub.closeAll()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(writer.ended, undefined, 'not ended while the log has not taken the stream')
  for (const release of store.held) release()
  await closing
  t.match(events(sink), new RegExp(`^retry: 100\\n\\nid: ${post.id}_0\\ndata: \\n\\n`), 'the priming event came first')
  t.match(events(sink), /retry: 1000\n\n$/, 'then the end, with a retry hint')
})
