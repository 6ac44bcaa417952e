/**
 * The real SDK client through the gateway to the real SDK server, in both response modes of the
 * upstream: every flow a client uses works as it would directly.
 */
import t from 'tap'
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js'
import type { RpcError } from '../helpers/http.ts'
import { MODES, client, eventually, gateway, progressIn, textOf, upstream } from '../helpers/peers.ts'

// The two upstream response modes, and SSE relayed without the event log (`streaming: false`).
const VARIANTS = [...MODES.map((mode) => ({ ...mode, streaming: true })), { name: 'SSE responses, no event log', jsonResponse: false, streaming: false }]

for (const mode of VARIANTS) {
  t.test(mode.name, async (t) => {
    const up = await upstream(t, { jsonResponse: mode.jsonResponse })
    const gw = await gateway(t, { upstream: up.url, ...(mode.streaming ? {} : { streaming: false }) })

    t.test('initialize, tools/list, tools/call, ping', async (t) => {
      const { client: c, transport } = await client(t, gw.url)
      t.equal(c.getServerVersion()?.name, 'demo-upstream')
      const sessionId = transport.sessionId as string
      t.equal((await gw.app.mcpSessions.store.get(sessionId))?.protocolVersion, '2025-11-25')
      t.match(sessionId, /^[A-Za-z0-9_-]{32}$/, 'the client holds a gateway session id')
      const upstreamIds = up.record.requests.map((r) => r.headers['mcp-session-id']).filter((id) => id !== undefined)
      t.notOk(upstreamIds.includes(sessionId), 'the upstream never sees the gateway session id')

      const tools = await c.listTools()
      t.same(tools.tools.map((tool) => tool.name).sort(), ['add', 'confirm', 'countdown', 'echo', 'grow', 'wait'])
      const sum = await c.callTool({ name: 'add', arguments: { a: 2, b: 40 } })
      t.same(sum.structuredContent, { sum: 42 })
      t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'héllo ✓' } })), 'héllo ✓')
      t.same(await c.ping(), {})
    })

    t.test('progress notifications during a call', async (t) => {
      const gets = up.record.requests.filter((r) => r.method === 'GET').length
      const { client: c, received } = await client(t, gw.url)
      // JSON mode sends progress on the GET stream: wait until the SDK client has opened it.
      await eventually(() => up.record.requests.filter((r) => r.method === 'GET').length > gets)
      const seen: Progress[] = []
      const result = await c.callTool({ name: 'countdown', arguments: { from: 5, delayMs: 5 } }, CallToolResultSchema, {
        onprogress: (progress) => seen.push(progress)
      })
      t.equal(textOf(result), 'liftoff')
      if (mode.jsonResponse) {
        // On the GET stream, a connection of its own: the gateway delivers every report, in order.
        await eventually(() => progressIn(received).length === 5)
        t.same(progressIn(received), [1, 2, 3, 4, 5])
      } else {
        // On the call's own stream, before its answer: the SDK hands every report to the caller.
        t.same(seen.map((p) => p.progress), [1, 2, 3, 4, 5])
      }
    })

    t.test('a server-to-client request on the GET stream, answered by the client', async (t) => {
      const questions: string[] = []
      const { client: c } = await client(t, gw.url, {
        onElicit: (message) => {
          questions.push(message)
          return { ok: true }
        }
      })
      const result = await c.callTool({ name: 'confirm', arguments: { question: 'Deploy?' } })
      t.equal(textOf(result), 'confirmed')
      t.same(questions, ['Deploy?'])
    })

    t.test('DELETE ends the session at the gateway and upstream', async (t) => {
      const { client: c, transport } = await client(t, gw.url)
      const before = up.sessionCount()
      const sessionId = transport.sessionId as string
      t.ok(await gw.app.mcpSessions.store.get(sessionId))
      await transport.terminateSession()
      t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined, 'gone from the store')
      await eventually(() => up.sessionCount() === before - 1)
      const res = await fetch(gw.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' })
      })
      t.equal(res.status, 404, 'the deleted session is unknown')
      t.equal((await res.json() as RpcError).error.code, -32001)
      await c.close()
    })

    t.test('two sessions at once never see each other\'s messages', async (t) => {
      const asked: Record<string, string[]> = { a: [], b: [] }
      const gets = up.record.requests.filter((r) => r.method === 'GET').length
      const a = await client(t, gw.url, { onElicit: (m) => { asked.a?.push(m); return { ok: true } } })
      const b = await client(t, gw.url, { onElicit: (m) => { asked.b?.push(m); return { ok: false } } })
      const stray: unknown[] = []
      a.client.fallbackNotificationHandler = async (n) => { stray.push(n) }
      b.client.fallbackNotificationHandler = async (n) => { stray.push(n) }
      await eventually(() => up.record.requests.filter((r) => r.method === 'GET').length >= gets + 2)
      const progress: Record<string, number[]> = { a: [], b: [] }
      const [ra, rb, ca, cb] = await Promise.all([
        a.client.callTool({ name: 'countdown', arguments: { from: 20, delayMs: 1 } }, CallToolResultSchema, { onprogress: (p) => progress.a?.push(p.progress) }),
        b.client.callTool({ name: 'countdown', arguments: { from: 30, delayMs: 1 } }, CallToolResultSchema, { onprogress: (p) => progress.b?.push(p.progress) }),
        a.client.callTool({ name: 'confirm', arguments: { question: 'A?' } }),
        b.client.callTool({ name: 'confirm', arguments: { question: 'B?' } })
      ])
      t.equal(textOf(ra), 'liftoff')
      t.equal(textOf(rb), 'liftoff')
      t.equal(textOf(ca), 'confirmed')
      t.equal(textOf(cb), 'declined')
      const expected = { a: Array.from({ length: 20 }, (_, i) => i + 1), b: Array.from({ length: 30 }, (_, i) => i + 1) }
      if (mode.jsonResponse) {
        await eventually(() => progressIn(a.received).length === 20 && progressIn(b.received).length === 30)
        t.same({ a: progressIn(a.received), b: progressIn(b.received) }, expected, 'each session got its own reports, all of them, in order')
      } else {
        t.same(progress, expected, 'each session got its own reports, all of them, in order')
      }
      t.same(asked, { a: ['A?'], b: ['B?'] })
      t.same(stray, [])
    })
  })
}
