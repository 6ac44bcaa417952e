/**
 * stdio children over their lives, through the gateway with SDK clients: warm spares serve
 * `initialize` with a child already started; a child past its lifetime or its memory ceiling is
 * retired and its session ends with a coded error (its client re-initialises on a fresh child);
 * an idle one is closed; the children and their age are in the metrics.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { client, eventually, gateway, textOf } from '../helpers/peers.ts'
import { stdioUpstream } from '../helpers/stdio.ts'
import { openSession, postHeaders } from '../helpers/http.ts'
import type { ChildrenReport } from '../../lib/upstream/stdio-pool.ts'

const report = (app: FastifyInstance): ChildrenReport => app.mcpUpstreams.get('stdio-demo')?.children?.() as ChildrenReport
const pidOf = async (c: Awaited<ReturnType<typeof client>>['client']): Promise<number> => Number(textOf(await c.callTool({ name: 'whoami', arguments: {} })).split(':')[0])

async function metric (url: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(url.replace(/\/mcp$/, '/metrics'))).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('spares: initialize gets a child started before it, and the spare is replaced', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ spares: 2 }), metrics: {} })
  await eventually(() => report(gw.app).spares === 2, 20_000)
  const spares = report(gw.app).children.map((child) => child.pid)
  const { client: c } = await client(t, gw.url)
  t.ok(spares.includes(await pidOf(c)), 'the session is served by a spare')
  await eventually(() => report(gw.app).spares === 2, 20_000)
  t.equal(await metric(gw.url, 'mcp_gateway_stdio_children{upstream="stdio-demo",state="session"}'), 1)
  t.equal(await metric(gw.url, 'mcp_gateway_stdio_children{upstream="stdio-demo",state="spare"}'), 2)
  t.ok((await metric(gw.url, 'mcp_gateway_stdio_child_oldest_seconds{upstream="stdio-demo"}') ?? 0) > 0, 'the oldest child\'s age')
})

t.test('a lifetime: the child is retired, its session ends; the client re-initialises on a new child', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ maxLifetimeMs: 3000 }), metrics: {} })
  const { client: first } = await client(t, gw.url)
  const before = await pidOf(first)
  await eventually(() => report(gw.app).retired.lifetime === 1, 15_000)
  const gone = await first.callTool({ name: 'whoami', arguments: {} }).then(() => undefined, (err: unknown) => err as Error)
  t.match(gone?.message, /404|Session not found/, 'the retired child\'s session is gone: 404')
  const { client: again } = await client(t, gw.url)
  t.not(await pidOf(again), before, 'a new session, on a new child')
  t.equal(await metric(gw.url, 'mcp_gateway_stdio_children_retired_total{upstream="stdio-demo",reason="lifetime"}'), 1)
})

t.test('a memory ceiling: the call in flight gets MCP_GW_UPSTREAM_EXITED saying why; a new session works', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ maxMemoryMb: 200 }), metrics: {} })
  const { client: c } = await client(t, gw.url)
  const err = await c.callTool({ name: 'hog', arguments: { mb: 400, holdMs: 30_000 } }).then(() => undefined, (e: unknown) => e as McpError)
  t.equal(err?.code, -32068)
  t.match(err?.message, /its process used \d+ MB of memory, over its ceiling of 200 MB/)
  t.equal(await metric(gw.url, 'mcp_gateway_stdio_children_retired_total{upstream="stdio-demo",reason="memory"}'), 1)
  const { client: next } = await client(t, gw.url)
  t.equal(textOf(await next.callTool({ name: 'echo', arguments: { text: 'fresh' } })), 'fresh')
})

t.test('idle: a child whose session is not used is closed; the session is gone', async (t) => {
  const gw = await gateway(t, { upstream: stdioUpstream({ idleMs: 1000 }) })
  // A client with no GET stream open (the SDK's would keep the session in use, as it should).
  const sessionId = await openSession(gw.url)
  t.equal(report(gw.app).sessions, 1)
  await eventually(() => report(gw.app).sessions === 0, 15_000)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(res.status, 404, 'its session is gone: the client re-initialises')
  await res.text()
})

t.test('spares need per-session children; lifecycle options are checked', async (t) => {
  await t.rejects(gateway(t, { upstream: stdioUpstream({ shared: true, spares: 1 }) }), /spares.*a shared stdio upstream runs one child/)
  await t.rejects(gateway(t, { upstream: stdioUpstream({ maxMemoryMb: -1 }) }), /upstream\.maxMemoryMb/)
  await t.rejects(gateway(t, { upstream: stdioUpstream({ spares: 100 }) }), /"upstream\.spares": must be at most 64/)
})
