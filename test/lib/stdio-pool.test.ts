/**
 * A stdio upstream's children over their lives, with real children (the stdio demo server) and
 * the checks run by hand at chosen times: spares taken and replaced, a lifetime that waits for a
 * call in flight (up to its grace), a memory ceiling read from /proc.
 */
import t, { type Test } from 'tap'
import { StdioPool, LIFETIME_GRACE_MS, type StdioLifecycle } from '../../lib/upstream/stdio-pool.ts'
import type { StdioChannel } from '../../lib/upstream/stdio.ts'
import { stdioUpstream } from '../helpers/stdio.ts'
import { eventually } from '../helpers/peers.ts'

const quiet = { info () {}, warn () {}, error () {}, debug () {}, child () { return quiet } }

function pool (t: Test, lifecycle: Partial<StdioLifecycle>, busy: (label: string) => boolean = () => false): StdioPool {
  const made = new StdioPool('demo', stdioUpstream(), { spares: 0, maxLifetimeMs: 0, maxMemoryBytes: 0, ...lifecycle }, quiet as never, busy)
  t.teardown(() => made.destroy())
  return made
}

/** Resolves with why the channel closed. */
const closed = (channel: StdioChannel): Promise<Error> => new Promise((resolve) => { channel.onclose = resolve })

t.test('spares: started ahead, taken for a session, replaced', async (t) => {
  const spares = pool(t, { spares: 2 })
  spares.warm()
  await eventually(() => spares.report().spares === 2, 20_000)
  const waiting = spares.report().children.map((child) => child.pid)
  const taken = await spares.take('session-1')
  t.ok(waiting.includes(taken.pid), 'the session got a child started before it asked')
  t.equal(spares.report().starting, 1, 'its replacement is starting at once')
  t.teardown(() => taken.kill())
  await eventually(() => spares.report().spares === 2, 20_000)
  t.same(spares.report().children.filter((child) => child.state === 'session').map((child) => child.pid), [taken.pid])
  await spares.close()
  t.equal(spares.report().spares, 0, 'closed: no spare left running')
})

t.test('a lifetime (from when the child began to serve) waits for the call in flight, up to its grace', async (t) => {
  let busy = true
  // Long enough that the pool's own once-a-second check never retires anything here: these do.
  const LIFE = 3_600_000
  const lives = pool(t, { maxLifetimeMs: LIFE }, () => busy)
  const child = await lives.take('s')
  const taken = Date.now()
  const why = closed(child)
  await lives.check(taken + LIFE + 1)
  t.notOk(child.stopped, 'past its lifetime with a call in flight: it goes on')
  await lives.check(taken + LIFE + LIFETIME_GRACE_MS + 1)
  t.ok(child.stopped, 'past the grace too: retired whatever it does')
  t.match((await why).message, /maximum lifetime of 3600000 ms/)

  busy = false
  const asked = Date.now()
  const next = await lives.take('s2')
  const nextTaken = Date.now()
  const nextWhy = closed(next)
  await lives.check(asked + LIFE - 1)
  t.notOk(next.stopped, 'not before its lifetime')
  await lives.check(nextTaken + LIFE)
  t.match((await nextWhy).message, /maximum lifetime/, 'idle past its lifetime: retired at once')
  t.same(lives.report().retired, { lifetime: 2, memory: 0 })
  t.equal(lives.tracked, 0, 'retired children are forgotten')
})

t.test('a spare that waited its whole lifetime is replaced, never handed out', async (t) => {
  const LIFE = 3_600_000
  const spares = pool(t, { spares: 1, maxLifetimeMs: LIFE })
  spares.warm()
  await eventually(() => spares.report().spares === 1, 20_000)
  const [stale] = spares.report().children
  await spares.check(Date.now() + LIFE)
  t.equal(spares.report().retired.lifetime, 1)
  const fresh = await spares.take('s')
  t.teardown(() => fresh.kill())
  t.not(fresh.pid, stale?.pid, 'the session gets a new child')
})

t.test('a session\'s child is forgotten once it is gone, whatever stopped it', async (t) => {
  const plain = pool(t, {})
  const children = await Promise.all([plain.take('a'), plain.take('b')])
  t.equal(plain.tracked, 2)
  children[0]?.kill()
  await children[1]?.close()
  await eventually(() => plain.tracked === 0, 10_000)
  t.pass('no check timer runs with no lifecycle set, and nothing is kept')
})

t.test('a memory ceiling: a child past it is stopped, with how much it used', async (t) => {
  const capped = pool(t, { maxMemoryBytes: 1 })
  const child = await capped.take('s')
  const why = closed(child)
  // Read as soon as the process exists; its memory grows as node starts up (polled, bounded).
  let rss = await child.rssBytes()
  for (let i = 0; i < 200 && (rss ?? 0) <= 1048576; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
    rss = await child.rssBytes()
  }
  t.ok(rss !== undefined && rss > 1048576, `its resident memory is read from /proc (${String(rss)} bytes)`)
  await capped.check()
  t.match((await why).message, /its process used \d+ MB of memory, over its ceiling of 0 MB/)
  t.same(capped.report().retired, { lifetime: 0, memory: 1 })
  t.equal(await child.rssBytes(), undefined, 'a stopped child has no memory to read')
})
