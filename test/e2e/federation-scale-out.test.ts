/**
 * One virtual session served by two gateway instances on one Redis: opened through A, then listed,
 * called, streamed and ended through B, with no new member session opened by B (the members'
 * sessions are in the store). A stdio member's child stays on the instance that started it: B
 * starts one of its own.
 */
import t from 'tap'
import { eventually, gateway, upstream } from '../helpers/peers.ts'
import { everythingStdio } from '../helpers/published-servers.ts'
import { initializeBody, postHeaders } from '../helpers/http.ts'
import { readEvents } from '../helpers/sse.ts'
import { REDIS_URL, redisClient, skipWithoutRedis } from '../helpers/redis.ts'
import type { DemoUpstream } from '../../examples/demo-upstream/server.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

const skip = await skipWithoutRedis()

const initializes = (up: DemoUpstream): number => up.record.requests.filter((request) => (request.body as { method?: string } | undefined)?.method === 'initialize').length

/** One request to one instance; the answer's messages, whether it came as JSON or SSE. */
async function rpc (url: string, session: string, body: Record<string, unknown>): Promise<{ status: number, messages: JsonRpcMessage[] }> {
  const res = await fetch(url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', ...body }) })
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const { events } = await readEvents(res)
    return { status: res.status, messages: events.filter((event) => event.data.length > 0).map((event) => JSON.parse(event.data) as JsonRpcMessage) }
  }
  const text = await res.text()
  return { status: res.status, messages: text.length === 0 ? [] : [JSON.parse(text) as JsonRpcMessage] }
}

const resultOf = (answer: { messages: JsonRpcMessage[] }): Record<string, unknown> | undefined =>
  (answer.messages.find((message) => 'result' in message) as { result?: Record<string, unknown> } | undefined)?.result

t.test('two instances on Redis serving one virtual session', { skip }, async (t) => {
  const { prefix } = await redisClient(t)
  const a = await upstream(t)
  const b = await upstream(t)
  const options = {
    upstream: {
      kind: 'virtual' as const,
      name: 'spread',
      members: [
        { namespace: 'a', upstream: { name: 'a', url: a.url } },
        { namespace: 'b', upstream: { name: 'b', url: b.url } },
        { namespace: 'ev', upstream: everythingStdio('ev'), tools: { include: ['echo'] } }
      ]
    },
    store: { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix }
  }
  const first = await gateway(t, options)
  const second = await gateway(t, options)

  const opened = await fetch(first.url, { method: 'POST', headers: postHeaders(), body: initializeBody() })
  t.equal(opened.status, 200)
  await opened.text()
  const session = opened.headers.get('mcp-session-id') as string
  t.ok(session, 'a session, opened through the first instance')
  t.equal((await rpc(second.url, session, { method: 'notifications/initialized' })).status, 202, 'initialized, through the second')
  t.same([initializes(a), initializes(b)], [1, 1], 'one member session each')

  const listed = await rpc(second.url, session, { id: 2, method: 'tools/list' })
  const names = ((resultOf(listed)?.tools ?? []) as Array<{ name: string }>).map((tool) => tool.name)
  for (const name of ['a_echo', 'b_echo', 'ev_echo']) t.ok(names.includes(name), `the second instance lists ${name}`)
  const called = await rpc(second.url, session, { id: 3, method: 'tools/call', params: { name: 'b_echo', arguments: { text: 'from the second' } } })
  t.same((resultOf(called)?.content as Array<{ text: string }>)[0]?.text, 'from the second', 'and calls through it reach the member')
  const local = await rpc(second.url, session, { id: 4, method: 'tools/call', params: { name: 'ev_echo', arguments: { message: 'child of B' } } })
  t.same((resultOf(local)?.content as Array<{ text: string }>)[0]?.text, 'Echo: child of B', 'a stdio member answers from a child of the second instance')
  t.same([initializes(a), initializes(b)], [1, 1], 'the HTTP members\' sessions are the same ones: none opened by the second instance')
  const aSession = a.record.requests.map((request) => request.headers['mcp-session-id']).find((id) => typeof id === 'string')
  t.equal(new Set(a.record.requests.map((request) => request.headers['mcp-session-id']).filter((id) => id !== undefined)).size, 1, `one session of member a in all (${String(aSession)})`)

  // The session's own stream on the second instance; a member's list change reaches it there.
  const stream = new AbortController()
  t.teardown(() => { stream.abort() })
  const get = await fetch(second.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }, signal: stream.signal })
  t.equal(get.status, 200, 'the session\'s stream opens on the second instance')
  const heard: string[] = []
  const reading = readEvents(get, Infinity, (event) => { if (event.data.length > 0) heard.push((JSON.parse(event.data) as { method?: string }).method ?? '') }).catch(() => ({ events: [], comments: [] }))
  // Member a's own stream is held by the instance holding the client's: wait until it is open.
  await eventually(() => a.record.requests.some((request) => request.method === 'GET'), 10_000)
  const grew = await rpc(first.url, session, { id: 5, method: 'tools/call', params: { name: 'a_grow', arguments: { name: 'fresh' } } })
  t.same((resultOf(grew)?.content as Array<{ text: string }>)[0]?.text, 'added fresh', 'a call through the first instance')
  await eventually(() => heard.includes('notifications/tools/list_changed'), 10_000)
  t.pass('the member\'s list change reached the stream on the second instance')
  const relisted = await rpc(first.url, session, { id: 6, method: 'tools/list' })
  t.ok(((resultOf(relisted)?.tools ?? []) as Array<{ name: string }>).some((tool) => tool.name === 'a_fresh'), 'and the first instance lists the new tool')
  stream.abort()
  await reading

  const ended = await fetch(second.url, { method: 'DELETE', headers: { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } })
  t.equal(ended.status, 200, 'ended through the second instance')
  await eventually(() => a.record.closedSessions.length === 1 && b.record.closedSessions.length === 1, 10_000)
  t.pass('which ended the members\' sessions')
  t.equal((await rpc(first.url, session, { id: 7, method: 'tools/list' })).status, 404, 'and the first instance knows it is gone')
})

t.test('a member session re-opened by one instance is taken up by the other, not opened a third time', { skip }, async (t) => {
  const { prefix } = await redisClient(t)
  const a = await upstream(t)
  const options = {
    upstream: { kind: 'virtual' as const, name: 'again', cacheTtl: 0, members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }] },
    store: { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix }
  }
  const first = await gateway(t, options)
  const second = await gateway(t, options)
  const opened = await fetch(first.url, { method: 'POST', headers: postHeaders(), body: initializeBody() })
  await opened.text()
  const session = opened.headers.get('mcp-session-id') as string
  await rpc(first.url, session, { method: 'notifications/initialized' })
  const echo = async (url: string, id: number, text: string): Promise<string | undefined> =>
    ((resultOf(await rpc(url, session, { id, method: 'tools/call', params: { name: 'a_echo', arguments: { text } } }))?.content ?? []) as Array<{ text: string }>)[0]?.text
  t.equal(await echo(second.url, 2, 'on the second'), 'on the second')
  const memberSession = a.record.requests.map((request) => request.headers['mcp-session-id']).find((id) => typeof id === 'string') as string
  // The member forgets the session (as a restart or an expiry would).
  await (await fetch(a.url, { method: 'DELETE', headers: { 'mcp-session-id': memberSession, 'mcp-protocol-version': '2025-11-25' } })).text()
  // A list is idempotent: the instance that meets the 404 re-opens the member and asks again.
  const listed = await rpc(second.url, session, { id: 3, method: 'tools/list' })
  t.ok(((resultOf(listed)?.tools ?? []) as Array<{ name: string }>).some((tool) => tool.name === 'a_echo'), 'the second instance re-opened the member')
  t.equal(initializes(a), 2, 'one new member session')
  const relisted = await rpc(first.url, session, { id: 4, method: 'tools/list' })
  t.ok(((resultOf(relisted)?.tools ?? []) as Array<{ name: string }>).some((tool) => tool.name === 'a_echo'), 'the first instance serves the session too')
  t.equal(initializes(a), 2, 'by taking up that session, not opening a third')
  t.equal(await echo(first.url, 5, 'on the first'), 'on the first', 'and its calls reach the member on it')
})
