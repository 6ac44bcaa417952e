/**
 * A virtual server when members fail or change: honest list caching and its invalidation, a
 * member's session expiring under the client, a member too slow to answer, bad configs.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { refused } from '../helpers/refused.ts'
import type { DemoUpstream } from '../../examples/demo-upstream/server.ts'

type Teardown = { teardown (fn: () => unknown): void }

async function connect (t: Teardown, url: string) {
  const client = new Client({ name: 'fed-failures', version: '1.0.0' })
  const seen = { toolsChanged: 0 }
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => { seen.toolsChanged++ })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  t.teardown(() => client.close())
  return { client, seen }
}

function posted (up: DemoUpstream, method: string): number {
  return up.record.requests.filter((request) => (request.body as { method?: string } | undefined)?.method === method).length
}

t.test('members\' lists are kept across sessions until they change', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'cached', members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] } })
  const first = await connect(t, gw.url)
  const names = (await first.client.listTools()).tools.map((tool) => tool.name)
  t.ok(names.includes('a_echo') && names.includes('b_echo'))
  const second = await connect(t, gw.url)
  t.same((await second.client.listTools()).tools.map((tool) => tool.name), names, 'another session gets the same list')
  t.equal(posted(a, 'tools/list'), 1, 'member a was asked once for both sessions')
  t.equal(posted(b, 'tools/list'), 1, 'member b was asked once for both sessions')

  const changed = first.seen.toolsChanged
  t.equal(textOf(await first.client.callTool({ name: 'a_grow', arguments: { name: 'fresh' } })), 'added fresh')
  await eventually(() => first.seen.toolsChanged > changed, 10_000)
  const grown = (await first.client.listTools()).tools.map((tool) => tool.name)
  t.ok(grown.includes('a_fresh'), 'list_changed from a member invalidates its part of the list')
  t.ok(posted(a, 'tools/list') >= 2, 'member a was asked again')
  t.equal(posted(b, 'tools/list'), 1, 'member b\'s list was still good')
  t.ok((await second.client.listTools()).tools.some((tool) => tool.name === 'a_fresh'), 'the other session sees the change too')
})

t.test('a member that forgot its session is re-opened without the client noticing', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'expiring', cacheTtl: 0, members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] } })
  const { client } = await connect(t, gw.url)
  t.equal(textOf(await client.callTool({ name: 'a_echo', arguments: { text: 'before' } })), 'before')
  const sessionId = a.record.requests.map((request) => request.headers['mcp-session-id']).find((id) => typeof id === 'string') as string
  t.ok(sessionId, 'the member has a session')
  // The member ends the session on its side (as an upstream restart or expiry would).
  const res = await fetch(a.url, { method: 'DELETE', headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } })
  t.equal(res.status, 200)
  const initializes = posted(a, 'initialize')
  // Several requests meet the forgotten session at once (as a client re-listing everything does):
  // one new session serves them all; a second re-open would end the first under them.
  const lists = await Promise.all([client.listTools(), client.listTools(), client.listTools()])
  for (const list of lists) {
    const tools = list.tools.map((tool) => tool.name)
    t.ok(tools.includes('a_echo') && tools.includes('b_echo'), 'the list is whole: the idempotent request went through')
  }
  t.equal(posted(a, 'initialize'), initializes + 1, 'the member was given one new session')
  t.equal(textOf(await client.callTool({ name: 'a_echo', arguments: { text: 'after' } })), 'after', 'and calls reach it again')
})

t.test('a member too slow to answer is left out, bounded by its timeout', async (t) => {
  const good = await upstream(t)
  const sockets = new Set<Socket>()
  // Takes every request and never answers.
  const silent = createServer((_req: IncomingMessage, _res: ServerResponse) => {})
  silent.on('connection', (socket) => { sockets.add(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => silent.close(resolve))
  })
  const slowUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`
  const gw = await gateway(t, {
    upstream: {
      kind: 'virtual',
      name: 'bounded',
      members: [
        { namespace: 'slow', timeout: 300, upstream: { name: 'slow', url: slowUrl, protocol: '2025' } },
        { namespace: 'good', upstream: { name: 'good', url: good.url } }
      ]
    }
  })
  const started = Date.now()
  const { client } = await connect(t, gw.url)
  const opened = Date.now() - started
  t.ok(opened < 5000, `the session opened without waiting for the silent member (${opened} ms)`)
  t.same((await client.listTools()).tools.map((tool) => tool.name).filter((name) => !name.startsWith('good_')), [], 'only the good member\'s tools are listed')
  t.equal(textOf(await client.callTool({ name: 'good_echo', arguments: { text: 'ok' } })), 'ok', 'and its calls go through')
})

t.test('a session whose every member fails to open is refused, naming them', async (t) => {
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'empty', members: [{ namespace: 'gone', upstream: { name: 'gone', url: 'http://127.0.0.1:9/mcp', protocol: '2025' } }] } })
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  const text = await res.text()
  t.match(text, /-32073/, 'the coded error')
  t.match(text, /no upstream of virtual server empty could be opened \(gone: /)
})

t.test('virtual server configs are checked at start, errors naming the entry', async (t) => {
  const url = 'http://127.0.0.1:9/mcp'
  t.match(await refused({ upstream: { kind: 'virtual', members: [] } }), /"upstream\.members": must name at least one member upstream/)
  t.match(await refused({ upstream: { kind: 'virtual', naming: 'sometimes', members: [{ upstream: url }] } }), /"upstream\.naming": must be "prefix", "collision" or "none"/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { name: 'x', url }, namespace: 'n' }, { upstream: { name: 'y', url }, namespace: 'n' }] } }), /"upstream\.members\[1\]\.namespace": "n" is also members\[0\]'s/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { name: 'x', url } }, { upstream: { name: 'x', url } }] } }), /"upstream\.members\[1\]\.upstream\.name": "x" is also members\[0\]'s/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { url }, tools: { include: 'a*' } }] } }), /"upstream\.members\[0\]\.tools\.include"/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { url }, tool: {} }] } }), /"upstream\.members\[0\]\.tool": is not a known option/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { kind: 'virtual', members: [] } }] } }), /"upstream\.members\[0\]\.upstream/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: url, namespace: 'bad space' }] } }), /"upstream\.members\[0\]\.namespace": must be a letter, then letters, digits/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { name: 'my_server', url } }] } }), /"upstream\.members\[0\]\.namespace": is not given, and the upstream's name "my_server" cannot stand for it/)
})

t.test('merged lists are paged with the gateway\'s own cursors', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'paged', pageSize: 5, members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] } })
  const { client } = await connect(t, gw.url)
  const names: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor })
    t.ok(page.tools.length <= 5, 'at most pageSize per page')
    names.push(...page.tools.map((tool) => tool.name))
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined && pages < 20)
  t.ok(pages >= 2, `${pages} pages`)
  t.equal(new Set(names).size, names.length, 'no tool twice')
  t.ok(names.includes('a_echo') && names.includes('b_grow'), 'every member\'s tools, across the pages')
  // Another gateway instance (any instance) continues a cursor: it encodes where it is.
  const other = await gateway(t, { upstream: { kind: 'virtual', name: 'paged', pageSize: 5, members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] } })
  const second = await connect(t, other.url)
  const first = await client.listTools({})
  const continued = await second.client.listTools({ cursor: first.nextCursor as string })
  t.same(continued.tools.map((tool) => tool.name), names.slice(5, 10), 'another instance serves the next page')
  const bad = await client.listTools({ cursor: 'not-ours' }).then(() => undefined, (err: { code?: number }) => err)
  t.equal(bad?.code, -32602, 'a cursor the gateway did not give is invalid params')
})

t.test('a cancelled call reaches the member it went to, and is not answered', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'cancels', members: [{ namespace: 'a', upstream: { name: 'a', url: a.url } }, { namespace: 'b', upstream: { name: 'b', url: b.url } }] } })
  const { client } = await connect(t, gw.url)
  const abort = new AbortController()
  const call = client.callTool({ name: 'b_wait', arguments: { ms: 60_000 } }, undefined, { signal: abort.signal })
  await eventually(() => posted(b, 'tools/call') === 1, 10_000)
  abort.abort('changed my mind')
  await t.rejects(call, 'the client gave up')
  await eventually(() => b.record.cancelled.length === 1, 10_000)
  t.equal(a.record.cancelled.length, 0, 'the other member heard nothing')
  t.equal(textOf(await client.callTool({ name: 'b_echo', arguments: { text: 'after' } })), 'after', 'the session goes on')
})

t.test('a member\'s excluded resources stay out of reach', async (t) => {
  const a = await upstream(t)
  const gw = await gateway(t, { upstream: { kind: 'virtual', name: 'filtered', members: [{ namespace: 'a', upstream: { name: 'a', url: a.url }, resources: { exclude: ['*'] } }] } })
  const { client } = await connect(t, gw.url)
  const read = await client.readResource({ uri: 'a+demo://anything' }).then(() => undefined, (err: { code?: number, message?: string }) => err)
  t.equal(read?.code, -32602, 'a namespaced URI of an excluded resource is unknown')
  t.equal(posted(a, 'resources/read'), 0, 'and never reached the member')
})
