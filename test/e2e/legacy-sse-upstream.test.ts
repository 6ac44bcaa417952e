/**
 * The SDK client (Streamable HTTP) through the gateway to an SDK server that speaks only the
 * legacy HTTP+SSE transport (2024-11-05): the gateway bridges the two.
 */
import t from 'tap'
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js'
import { client, eventually, gateway, textOf } from '../helpers/peers.ts'
import { startLegacySseServer } from '../../examples/legacy-sse-server/server.ts'

t.test('tools, progress and elicitation over a legacy HTTP+SSE upstream', async (t) => {
  const legacy = await startLegacySseServer()
  t.teardown(() => legacy.close())
  const gw = await gateway(t, { upstream: { kind: 'sse', name: 'legacy', url: legacy.url } })
  const { client: c, transport } = await client(t, gw.url, { onElicit: () => ({ ok: true }) })
  t.equal(c.getServerVersion()?.name, 'demo-upstream')
  t.equal(legacy.sessionCount(), 1, 'one upstream SSE session per gateway session')
  t.ok((await c.listTools()).tools.some((tool) => tool.name === 'countdown'))
  t.same((await c.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).structuredContent, { sum: 3 })

  const seen: Progress[] = []
  const result = await c.callTool({ name: 'countdown', arguments: { from: 4, delayMs: 5 } }, CallToolResultSchema, { onprogress: (p) => seen.push(p) })
  t.equal(textOf(result), 'liftoff')
  t.same(seen.map((p) => p.progress), [1, 2, 3, 4])
  t.equal(textOf(await c.callTool({ name: 'confirm', arguments: { question: 'ok?' } })), 'confirmed', 'elicitation round trip')

  await transport.terminateSession()
  await eventually(() => legacy.sessionCount() === 0)
  t.pass('DELETE closes the upstream SSE connection')
})

t.test('a legacy upstream that goes away: the client gets an error, then 404', async (t) => {
  const legacy = await startLegacySseServer()
  const gw = await gateway(t, { upstream: { kind: 'sse', name: 'legacy', url: legacy.url } })
  const { client: c, transport } = await client(t, gw.url)
  const call = c.callTool({ name: 'wait', arguments: { ms: 5000 } }).then(() => undefined, (e: unknown) => e as { code: number })
  await eventually(() => legacy.sessionCount() === 1)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await legacy.close()
  const err = await call
  t.equal(err?.code, -32068, 'the pending call fails with "upstream gone"')
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId as string, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' })
  })
  t.equal(res.status, 404)
})

t.test('an SSE endpoint that is not one is refused at initialize', async (t) => {
  const legacy = await startLegacySseServer()
  t.teardown(() => legacy.close())
  const gw = await gateway(t, { upstream: { kind: 'sse', name: 'legacy', url: legacy.url.replace('/sse', '/nope') } })
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  t.equal(res.status, 502)
  t.equal((await res.json() as { id: number, error: { code: number } }).error.code, -32062)
})
