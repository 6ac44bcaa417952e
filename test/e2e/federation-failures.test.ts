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
import Fastify from 'fastify'
import mcpGateway, { type McpGatewayOptions } from '../../plugins/index.ts'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
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
  const tools = (await client.listTools()).tools.map((tool) => tool.name)
  t.ok(tools.includes('a_echo') && tools.includes('b_echo'), 'the list is whole: the idempotent request went through')
  t.equal(posted(a, 'initialize'), initializes + 1, 'the member was given a new session')
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

async function refused (options: unknown): Promise<string> {
  const app = Fastify({ logger: false })
  try {
    await app.register(mcpGateway, options as McpGatewayOptions)
    await app.ready()
    return 'accepted'
  } catch (err) {
    return (err as Error).message
  } finally {
    await app.close()
  }
}

t.test('virtual server configs are checked at start, errors naming the entry', async (t) => {
  const url = 'http://127.0.0.1:9/mcp'
  t.match(await refused({ upstream: { kind: 'virtual', members: [] } }), /"upstream\.members": must name at least one member upstream/)
  t.match(await refused({ upstream: { kind: 'virtual', naming: 'sometimes', members: [{ upstream: url }] } }), /"upstream\.naming": must be "prefix", "collision" or "none"/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { name: 'x', url }, namespace: 'n' }, { upstream: { name: 'y', url }, namespace: 'n' }] } }), /"upstream\.members\[1\]\.namespace": "n" is also members\[0\]'s/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { name: 'x', url } }, { upstream: { name: 'x', url } }] } }), /"upstream\.members\[1\]\.upstream\.name": "x" is also members\[0\]'s/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { url }, tools: { include: 'a*' } }] } }), /"upstream\.members\[0\]\.tools\.include"/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { url }, tool: {} }] } }), /"upstream\.members\[0\]\.tool": is not a known option/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: { kind: 'virtual', members: [] } }] } }), /"upstream\.members\[0\]\.upstream/)
  t.match(await refused({ upstream: { kind: 'virtual', members: [{ upstream: url, namespace: 'bad space' }] } }), /"upstream\.members\[0\]\.namespace": must be letters, digits/)
})
