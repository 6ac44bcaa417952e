import t from 'tap'
import { isWellFormedSessionId, newSessionId } from '../../lib/session/id.ts'
import { SessionManager } from '../../lib/session/manager.ts'
import { MemorySessionStore } from '../../lib/session/memory-store.ts'

t.test('session ids are random, long, and visible ASCII', async (t) => {
  const ids = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const id = newSessionId()
    t.ok(/^[\x21-\x7e]+$/.test(id) && id.length * 6 >= 128, 'visible ASCII, >= 128 bits') || t.end()
    ids.add(id)
  }
  t.equal(ids.size, 1000)
  t.ok(isWellFormedSessionId(newSessionId()))
  t.notOk(isWellFormedSessionId('short'))
  t.notOk(isWellFormedSessionId('ééééééééééééééééééééééééééééééééé'))
})

t.test('the manager opens, finds, touches, updates and ends sessions', async (t) => {
  let now = 1000
  const store = new MemorySessionStore()
  const sessions = new SessionManager(store, () => now)
  const record = await sessions.open({ upstream: 'u', upstreamSessionId: 'up-1', protocolVersion: '2025-11-25', clientInfo: { name: 'c' } })
  t.equal(record.createdAt, 1000)
  t.equal(await sessions.count(), 1)
  now = 2000
  const found = await sessions.find(record.id)
  t.equal(found?.lastSeenAt, 2000)
  t.equal((await store.get(record.id))?.lastSeenAt, 2000, 'touched in the store')
  t.equal(await sessions.find('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), undefined)
  t.equal(await sessions.find('bogus'), undefined)
  const updated = await sessions.update(record.id, { protocolVersion: '2025-06-18' })
  t.equal(updated?.protocolVersion, '2025-06-18')
  t.equal(await sessions.update('missing', { protocolVersion: 'x' }), undefined)
  t.equal(await sessions.end(record.id), true)
  t.equal(await sessions.end(record.id), false)
  t.equal(await sessions.count(), 0)
  await store.touch(record.id, 5)
})

t.test('the memory store hands out copies', async (t) => {
  const store = new MemorySessionStore()
  const record = { id: 'a', upstream: 'u', upstreamSessionId: null, protocolVersion: 'v', createdAt: 1, lastSeenAt: 1 }
  await store.create(record)
  record.protocolVersion = 'changed'
  const got = await store.get('a')
  t.equal(got?.protocolVersion, 'v')
  if (got !== undefined) got.upstream = 'mutated'
  t.equal((await store.get('a'))?.upstream, 'u')
  await store.close()
  t.equal(await store.size(), 0)
})
