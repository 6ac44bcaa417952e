/**
 * 2026-07-28 clients (stateless, SDK 2.x pinned to that revision) of upstreams that hold
 * sessions only: a virtual server over published servers, and a plain stdio upstream. The gateway
 * holds the sessions on the clients' behalf, as it does for a 2025-era HTTP upstream.
 */
import t from 'tap'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient, modernUpstream } from '../helpers/eras.ts'
import { everythingStdio, memoryStdio } from '../helpers/published-servers.ts'

const KEYS = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }]
const AS_ALICE = { authorization: `Bearer ${KEYS[0]?.key as string}` }

function virtualServer (name: string) {
  return {
    kind: 'virtual' as const,
    name,
    members: [
      { namespace: 'ev', upstream: everythingStdio(`${name}-everything`), tools: { include: ['echo', 'get-sum', 'trigger-elicitation-request', 'toggle-simulated-logging'] } },
      { namespace: 'mem', upstream: memoryStdio(`${name}-memory`, join(tmpdir(), `fed-eras-${process.pid}-${name}.json`)), tools: { include: ['create_entities', 'search_nodes'] } }
    ]
  }
}

t.test('a 2026 client of a virtual server: discover, merged lists, calls to each member, input_required', async (t) => {
  const gw = await gateway(t, { upstream: virtualServer('fed'), auth: { apiKeys: { keys: KEYS } } })
  const elicited: string[] = []
  const client = await modernClient(t, gw.url, { headers: AS_ALICE, onElicit: (message) => { elicited.push(message); return { ok: true } } })
  t.equal(client.getServerVersion()?.name, 'fed', 'server/discover names the virtual server')
  t.ok(client.getServerCapabilities()?.tools !== undefined, 'and offers what its members offer')
  const names = (await client.listTools()).tools.map((tool) => tool.name).sort()
  t.same(names, ['ev_echo', 'ev_get-sum', 'ev_toggle-simulated-logging', 'ev_trigger-elicitation-request', 'mem_create_entities', 'mem_search_nodes'], 'the merged list, namespaced')
  t.equal(textOf(await client.callTool({ name: 'ev_echo', arguments: { message: 'stateless' } })), 'Echo: stateless', 'a call reaches server-everything')
  await client.callTool({ name: 'mem_create_entities', arguments: { entities: [{ name: 'Grace', entityType: 'person', observations: ['found a moth'] }] } })
  t.match(textOf(await client.callTool({ name: 'mem_search_nodes', arguments: { query: 'Grace' } })), /moth/, 'server-memory keeps what an earlier stateless call wrote')
  const answered = await client.callTool({ name: 'ev_trigger-elicitation-request', arguments: {} })
  t.equal(elicited.length, 1, 'the member\'s elicitation reached the client, as input_required')
  t.match(JSON.stringify(answered), /accept/, 'and the client\'s answer went back to the member')
  const unknown = await client.callTool({ name: 'ev_nope', arguments: {} }).then(() => undefined, (err: { code?: number }) => err)
  t.equal(unknown?.code, -32602, 'an unknown tool is invalid params, as for a 2025 client')
})

t.test('a 2026 client hears of a member\'s list change through subscriptions/listen', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'watch', members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] }, auth: { apiKeys: { keys: KEYS } } })
  const changes: string[][] = []
  const client = await modernClient(t, gw.url, { headers: AS_ALICE, onToolsChanged: (names) => changes.push(names) })
  t.notOk((await client.listTools()).tools.some((tool) => tool.name === 'a_fresh'))
  t.equal(textOf(await client.callTool({ name: 'a_grow', arguments: { name: 'fresh' } })), 'added fresh')
  await eventually(() => changes.some((names) => names.includes('a_fresh')), 10_000)
  t.pass('the change reached the client, and the list it asked again for has the new tool')
})

t.test('a 2026 client of a plain stdio upstream, with and without inbound auth', async (t) => {
  for (const auth of [true, false]) {
    const gw = await gateway(t, { upstream: everythingStdio(`plain-${String(auth)}`), ...(auth ? { auth: { apiKeys: { keys: KEYS } } } : {}) })
    const client = await modernClient(t, gw.url, auth ? { headers: AS_ALICE } : {})
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), `tools/list (auth ${auth ? 'on' : 'off'})`)
    t.equal(textOf(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } })), 'The sum of 2 and 40 is 42.', `tools/call (auth ${auth ? 'on' : 'off'})`)
  }
})

/** How often an upstream was asked for its tools. */
const listsAsked = (up: { requests: Array<{ body: unknown }> }): number => up.requests.filter((request) => (request.body as { method?: string } | undefined)?.method === 'tools/list').length

t.test('honest list caching: members\' ttlMs and cacheScope are kept, and the merged list says what is true of it', async (t) => {
  const lasting = await modernUpstream(t, { cacheHints: { 'tools/list': { ttlMs: 60_000, cacheScope: 'public' } } })
  const brief = await modernUpstream(t, { cacheHints: { 'tools/list': { ttlMs: 0, cacheScope: 'public' } } })
  const mine = await modernUpstream(t, { cacheHints: { 'tools/list': { ttlMs: 30_000, cacheScope: 'private' } } })
  const member = (name: string, url: string) => ({ namespace: name, upstream: { name, url, protocol: '2026' as const }, tools: { include: ['echo'] } })

  const shared = await gateway(t, { upstream: { kind: 'virtual', name: 'shared', members: [member('lasting', lasting.url)] }, auth: { apiKeys: { keys: KEYS } } })
  const first = await (await modernClient(t, shared.url, { headers: AS_ALICE })).listTools()
  t.equal(first.cacheScope, 'public', 'a list every member called public is public')
  t.ok(typeof first.ttlMs === 'number' && first.ttlMs > 50_000 && first.ttlMs <= 60_000, `ttlMs is the member's (${String(first.ttlMs)})`)
  await (await modernClient(t, shared.url, { headers: AS_ALICE })).listTools()
  t.equal(listsAsked(lasting), 1, 'a list good for a minute is asked for once')

  const mixed = await gateway(t, { upstream: { kind: 'virtual', name: 'mixed', members: [member('lasting', lasting.url), member('brief', brief.url), member('mine', mine.url)] }, auth: { apiKeys: { keys: KEYS } } })
  const before = listsAsked(brief)
  const merged = await (await modernClient(t, mixed.url, { headers: AS_ALICE })).listTools()
  t.same(merged.tools.map((tool) => tool.name).sort(), ['brief_echo', 'lasting_echo', 'mine_echo'])
  t.equal(merged.ttlMs, 0, 'the merged list lasts as long as its shortest-lived part')
  t.equal(merged.cacheScope, 'private', 'and is as private as its most private part')
  await (await modernClient(t, mixed.url, { headers: AS_ALICE })).listTools()
  t.equal(listsAsked(brief) - before, 2, 'a member that says ttlMs 0 is asked every time')
  const mineAsked = listsAsked(mine)
  const BOB = { name: 'bob', key: 'bob-key-0123456789abcdef0' }
  const mixedForBob = await gateway(t, { upstream: { kind: 'virtual', name: 'mixed', members: [member('mine', mine.url)] }, auth: { apiKeys: { keys: [...KEYS, BOB] } } })
  await (await modernClient(t, mixedForBob.url, { headers: AS_ALICE })).listTools()
  await (await modernClient(t, mixedForBob.url, { headers: AS_ALICE })).listTools()
  t.equal(listsAsked(mine) - mineAsked, 1, 'a private list is kept for its principal')
  await (await modernClient(t, mixedForBob.url, { headers: { authorization: `Bearer ${BOB.key}` } })).listTools()
  t.equal(listsAsked(mine) - mineAsked, 2, 'and never served to another')

  const ruled = await gateway(t, {
    upstream: { kind: 'virtual', name: 'ruled', members: [member('lasting', lasting.url)] },
    auth: { apiKeys: { keys: KEYS }, tools: [{ principals: ['alice'], tools: ['*'] }] }
  })
  const filtered = await (await modernClient(t, ruled.url, { headers: AS_ALICE })).listTools()
  t.equal(filtered.cacheScope, 'private', 'a list filtered per principal is private, whatever its members said')
})
