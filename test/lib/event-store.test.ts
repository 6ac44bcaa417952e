import t from 'tap'
import { MemoryEventStore } from '../../lib/events/memory-store.ts'
import { formatEventId, parseEventId } from '../../lib/events/store.ts'

const ev = (seq: number, data = `e${seq}`, at = Date.now()) => ({ seq, data, at })
const seqs = (result: Awaited<ReturnType<MemoryEventStore['replay']>>): number[] | string =>
  result.kind === 'events' ? result.events.map((e) => e.seq) : result.kind

t.test('event ids encode stream and position, and reject anything else', async (t) => {
  t.equal(formatEventId('ab1', 7), 'ab1_7')
  t.same(parseEventId('ab1_7'), { streamId: 'ab1', seq: 7 })
  t.same(parseEventId('g_0'), { streamId: 'g', seq: 0 })
  for (const bad of ['', 'g', 'g_', '_1', 'g_01', 'g_-1', 'g_1.5', 'a b_1', 'x'.repeat(65) + '_1', 'g_12345678901234567']) {
    t.equal(parseEventId(bad), undefined, bad)
  }
})

t.test('replay gives the events after a position, in order, per stream and session', async (t) => {
  const store = new MemoryEventStore()
  await store.open('s1', 'a')
  t.same(seqs(await store.replay('s1', 'a', 0)), [], 'an opened stream replays nothing yet')
  for (let i = 1; i <= 5; i++) await store.append('s1', 'a', ev(i))
  await store.append('s1', 'b', ev(1))
  t.same(seqs(await store.replay('s1', 'a', 2)), [3, 4, 5])
  t.same(seqs(await store.replay('s1', 'a', 5)), [])
  t.same(seqs(await store.replay('s1', 'b', 0)), [1])
  t.same(seqs(await store.replay('s2', 'a', 0)), 'unknown', 'another session does not see it')
  t.same(seqs(await store.replay('s1', 'zz', 0)), 'unknown')
  t.same(await store.stats(), { events: 6, bytes: 12, streams: 2, evicted: 0 })
  await store.deleteSession('s1')
  t.same(seqs(await store.replay('s1', 'a', 0)), 'unknown', 'deleted with its session')
})

t.test('retention by count trims the oldest; replay before them is refused', async (t) => {
  const store = new MemoryEventStore({ maxEventsPerStream: 3 })
  for (let i = 1; i <= 10; i++) await store.append('s', 'a', ev(i))
  t.same(seqs(await store.replay('s', 'a', 7)), [8, 9, 10])
  t.same(seqs(await store.replay('s', 'a', 6)), 'trimmed')
  t.same(seqs(await store.replay('s', 'a', 0)), 'trimmed')
})

t.test('retention by bytes per session trims the oldest events first', async (t) => {
  const store = new MemoryEventStore({ maxBytesPerSession: 10 })
  await store.append('s', 'a', ev(1, 'xxxx'))
  await store.append('s', 'b', ev(1, 'yyyy'))
  await store.append('s', 'b', ev(2, 'zzzz'))
  t.same(seqs(await store.replay('s', 'a', 0)), 'trimmed', 'the oldest stream lost its event')
  t.same(seqs(await store.replay('s', 'b', 0)), [1, 2])
  t.equal((await store.stats()).bytes, 8)
})

t.test('retention by age', async (t) => {
  let now = 0
  const store = new MemoryEventStore({ maxAgeMs: 100 }, () => now)
  await store.append('s', 'a', ev(1, 'a', 0))
  await store.append('s', 'a', ev(2, 'b', 50))
  now = 120
  t.same(seqs(await store.replay('s', 'a', 1)), [2])
  t.same(seqs(await store.replay('s', 'a', 0)), 'trimmed')
  now = 500
  t.same(seqs(await store.replay('s', 'a', 2)), [], 'an emptied stream still knows its position')
  t.same(seqs(await store.replay('s', 'a', 1)), 'trimmed')
  await store.append('s', 'a', ev(3, 'c', 500))
  t.same(seqs(await store.replay('s', 'a', 2)), [3])
  await store.close()
  t.same(await store.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 })
})

t.test('age retention reaches streams nobody replays (a long session\'s finished answers)', async (t) => {
  let now = 0
  const store = new MemoryEventStore({ maxAgeMs: 100 }, () => now)
  await store.open('s', 'g')
  for (let i = 0; i < 1000; i++) {
    now = i * 10
    await store.append('s', `p${i}`, ev(1, 'answer', now))
  }
  const stats = await store.stats()
  t.ok(stats.streams <= 13, `${stats.streams} streams kept of 1,000 (the quiet GET stream, and the last 100 ms)`)
  t.same(seqs(await store.replay('s', 'p999', 0)), [1], 'the newest answer is still there')
  t.same(seqs(await store.replay('s', 'p0', 0)), 'trimmed', 'an old one is known to be gone')
})

t.test('a long session keeps no entry for streams that retention emptied', async (t) => {
  const store = new MemoryEventStore({ maxBytesPerSession: 1000 })
  for (let i = 0; i < 5000; i++) await store.append('s', `p${i}`, ev(1, 'x'.repeat(100)))
  const stats = await store.stats()
  t.ok(stats.streams <= 11, `${stats.streams} streams kept`)
  t.ok(stats.bytes <= 1000)
  t.same(seqs(await store.replay('s', 'p4999', 0)), [1])
  t.same(seqs(await store.replay('s', 'p4000', 0)), 'trimmed', 'a recently forgotten stream answers trimmed')
  t.same(seqs(await store.replay('s', 'p4000', 1)), [], 'nothing was missed after its last event')
  t.same(seqs(await store.replay('s', 'p1', 0)), 'unknown', 'long-forgotten streams are unknown')
})

t.test('a global byte budget across sessions: the oldest sessions\' oldest events go first, counted', async (t) => {
  const store = new MemoryEventStore({ maxBytesTotal: 20, maxBytesPerSession: 1000 })
  for (const session of ['s1', 's2', 's3']) await store.open(session, 'p')
  await store.append('s1', 'p', ev(1, 'aaaaa'))
  await store.append('s1', 'p', ev(2, 'bbbbb'))
  await store.append('s2', 'p', ev(1, 'ccccc'))
  await store.append('s3', 'p', ev(1, 'ddddd'))
  t.same(await store.stats(), { events: 4, bytes: 20, streams: 3, evicted: 0 }, 'at the budget: nothing goes')
  await store.append('s3', 'p', ev(2, 'eeeee'))
  const stats = await store.stats()
  t.equal(stats.bytes, 20, 'back within the budget')
  t.equal(stats.evicted, 1, 'one event evicted, and counted')
  t.same(seqs(await store.replay('s1', 'p', 0)), 'trimmed', 'a client resuming before it is told so (410 -32067)')
  t.same(seqs(await store.replay('s1', 'p', 1)), [2], 'the rest of the oldest session stays')
  t.same(seqs(await store.replay('s3', 'p', 0)), [1, 2], 'the newest session is untouched')
  await store.deleteSession('s1')
  await store.append('s2', 'p', ev(2, 'fffff'))
  t.equal((await store.stats()).evicted, 1, 'a deleted session\'s bytes are given back to the budget')
})
