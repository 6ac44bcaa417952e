/**
 * The SDK client through the gateway to an SDK server over stdio, one child per session: every
 * flow works, sessions never share a process, and children are gone when their sessions are.
 */
import t from 'tap'
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js'
import { client, eventually, gateway, textOf } from '../helpers/peers.ts'
import { alive, stdioUpstream } from '../helpers/stdio.ts'
import type { ChannelUpstream } from '../../lib/upstream/channel-upstream.ts'

t.test('tools, progress, elicitation and isolation over stdio', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream() })
  const upstream = gw.app.mcpUpstreams.get('stdio-demo') as ChannelUpstream
  const { client: a } = await client(t, gw.url, { onElicit: () => ({ ok: true }) })
  t.equal(a.getServerVersion()?.name, 'demo-upstream')
  const tools = await a.listTools()
  t.ok(tools.tools.some((tool) => tool.name === 'whoami'))
  t.equal(textOf(await a.callTool({ name: 'echo', arguments: { text: 'héllo ✓' } })), 'héllo ✓')

  const seen: Progress[] = []
  const result = await a.callTool({ name: 'countdown', arguments: { from: 5, delayMs: 5 } }, CallToolResultSchema, { onprogress: (p) => seen.push(p) })
  t.equal(textOf(result), 'liftoff')
  t.same(seen.map((p) => p.progress), [1, 2, 3, 4, 5], 'progress arrives before the answer, in order')

  t.equal(textOf(await a.callTool({ name: 'confirm', arguments: { question: 'go?' } })), 'confirmed', 'elicitation round trip')

  const { client: b } = await client(t, gw.url)
  const first = (await a.callTool({ name: 'whoami' })).structuredContent as { pid: number, calls: number }
  const other = (await b.callTool({ name: 'whoami' })).structuredContent as { pid: number, calls: number }
  t.not(first.pid, other.pid, 'each session has its own process')
  t.equal(other.calls, 1, 'a new session starts from a fresh process')
  t.equal(upstream.size, 2)
})

t.test('a child that exits mid-call: a JSON-RPC error, then the session is gone', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream() })
  const { client: c, transport } = await client(t, gw.url)
  const sessionId = transport.sessionId as string
  const err = await c.callTool({ name: 'crash', arguments: { code: 3, afterMs: 20 } }).then(() => undefined, (e: unknown) => e as { code: number, message: string })
  t.equal(err?.code, -32068)
  t.match(err?.message, /exited with code 3/)
  // The next request finds the session gone: 404, which tells the client to start again.
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' })
  })
  t.equal(res.status, 404)
  t.equal((await res.json() as { error: { code: number } }).error.code, -32001)
  t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined, 'the gateway session is ended')
})

t.test('a child that writes garbage to stdout is stopped; the client gets a clear error', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream() })
  const upstream = gw.app.mcpUpstreams.get('stdio-demo') as ChannelUpstream
  const { client: c } = await client(t, gw.url)
  const err = await c.callTool({ name: 'garbage' }).then(() => undefined, (e: unknown) => e as { code: number, message: string })
  t.equal(err?.code, -32062)
  t.match(err?.message, /other than JSON-RPC/)
  await eventually(() => upstream.size === 0)
})

t.test('50 sessions, 50 children, all gone after the sessions end', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream() })
  const upstream = gw.app.mcpUpstreams.get('stdio-demo') as ChannelUpstream
  const clients = await Promise.all(Array.from({ length: 50 }, async () => await client(t, gw.url)))
  const pids = await Promise.all(clients.map(async ({ client: c }) => ((await c.callTool({ name: 'whoami' })).structuredContent as { pid: number }).pid))
  t.equal(new Set(pids).size, 50, 'one process per session')
  t.equal(upstream.size, 50)
  await Promise.all(clients.map(async ({ transport }) => await transport.terminateSession()))
  await eventually(() => upstream.size === 0 && pids.every((pid) => !alive(pid)), 10_000)
  t.pass('every child exited')
})

t.test('the cap on live children answers 503 with Retry-After', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ maxSessions: 1 }) })
  await client(t, gw.url)
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '5')
  t.equal((await res.json() as { error: { code: number } }).error.code, -32056)
})

t.test('gateway close stops every child', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream() })
  const { client: c } = await client(t, gw.url)
  const pid = ((await c.callTool({ name: 'whoami' })).structuredContent as { pid: number }).pid
  await gw.app.close()
  t.notOk(alive(pid), 'the child is gone once close() resolves')
})

t.test('shared mode: one child for every session, answers never cross', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ shared: true }) })
  const upstream = gw.app.mcpUpstreams.get('stdio-demo') as ChannelUpstream
  const clients = await Promise.all(Array.from({ length: 3 }, async () => (await client(t, gw.url)).client))
  const pids = await Promise.all(clients.map(async (c) => ((await c.callTool({ name: 'whoami' })).structuredContent as { pid: number }).pid))
  t.equal(new Set(pids).size, 1, 'one process serves them all')
  t.equal(upstream.size, 3, 'three upstream sessions on it')
  // Each SDK client numbers its requests from 0: the same ids at once, each answer to its own.
  const texts = await Promise.all(clients.flatMap((c, index) => [1, 2, 3].map(async (n) => textOf(await c.callTool({ name: 'echo', arguments: { text: `${index}-${n}` } })))))
  t.same(texts, ['0-1', '0-2', '0-3', '1-1', '1-2', '1-3', '2-1', '2-2', '2-3'])
  const progress: number[][] = [[], []]
  await Promise.all([0, 1].map(async (index) => await (clients[index] as typeof clients[number]).callTool({ name: 'countdown', arguments: { from: 3, delayMs: 5 } }, CallToolResultSchema, { onprogress: (p) => progress[index]?.push(p.progress) })))
  t.same(progress, [[1, 2, 3], [1, 2, 3]], 'progress tokens are rewritten too: each client sees only its own')
  // The tool's elicitation is refused on the clients' behalf; the SDK server reports it as a tool error.
  const refused = await (clients[0] as typeof clients[number]).callTool({ name: 'confirm', arguments: { question: 'who answers?' } })
  t.equal(refused.isError, true)
  t.match(textOf(refused), /shared by several clients/, 'server-to-client requests of a shared child are refused on its behalf')
})
