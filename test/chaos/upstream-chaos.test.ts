/**
 * Chaos on the upstream side: an upstream killed mid-call and mid-stream, and one that stalls.
 * The affected client gets a JSON-RPC error (never a hang), other sessions (on another upstream
 * of the same gateway) are unaffected, and what the exchange held is freed.
 */
import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { badUpstream } from '../helpers/bad-upstream.ts'
import { client, eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { upstreamProcess } from '../helpers/upstream-process.ts'

t.test('an upstream killed mid-call and mid-stream', async (t) => {
  const doomed = await upstreamProcess(t)
  const healthy = await upstream(t)
  const gw = await gateway(t, { upstreams: [{ name: 'doomed', url: doomed.url }, { name: 'healthy', url: healthy.url }] })
  const base = new URL(gw.url).origin
  const { client: victim } = await client(t, `${base}/mcp/doomed`)
  const { client: bystander } = await client(t, `${base}/mcp/healthy`)
  // A call waiting on the upstream, and one streaming progress from it.
  const waiting = victim.callTool({ name: 'wait', arguments: { ms: 60_000 } }).then(() => undefined, (err: unknown) => err as { code: number })
  let progress = 0
  const streaming = victim.callTool({ name: 'countdown', arguments: { from: 1000, delayMs: 20 } }, CallToolResultSchema, { onprogress: () => { progress++ } })
    .then(() => undefined, (err: unknown) => err as { code: number })
  await eventually(() => progress >= 3)
  const bystanderCalls = (async () => {
    const results: string[] = []
    for (let i = 0; i < 20; i++) results.push(textOf(await bystander.callTool({ name: 'echo', arguments: { text: `b${i}` } })))
    return results
  })()
  const killedAt = Date.now()
  doomed.child.kill('SIGKILL')
  const [waitErr, streamErr] = await Promise.all([waiting, streaming])
  t.ok(Date.now() - killedAt < 10_000, 'both calls ended promptly')
  t.ok(waitErr !== undefined && [-32060, -32065].includes(waitErr.code), `the waiting call got a JSON-RPC error (${String(waitErr?.code)})`)
  t.ok(streamErr !== undefined && [-32060, -32065].includes(streamErr.code), `the streaming call got a JSON-RPC error (${String(streamErr?.code)})`)
  t.same(await bystanderCalls, Array.from({ length: 20 }, (_, i) => `b${i}`), 'the other upstream\'s session never noticed')
  const res = await fetch(`${base}/mcp/doomed`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  t.equal(res.status, 502, 'later requests fail fast, no hang')
  t.equal((await res.json() as { error: { code: number } }).error.code, -32060, 'with "upstream unavailable"')
  // What the victim's exchanges held is freed: no answer still on its way, and of the client
  // streams only the bystander's GET stream is left.
  await eventually(() => !gw.app.mcpStreams.answering && gw.app.mcpStreams.openWriters === 1)
  t.equal(gw.app.mcpStreams.answering, false, 'no POST answer left on its way')
  t.equal(gw.app.mcpStreams.openWriters, 1, 'only the bystander\'s stream is open')
})

t.test('an upstream that stalls: the timeout fires, the client is answered, nothing is held', async (t) => {
  const stalled = await badUpstream(t, 'hang')
  const gw = await gateway(t, { upstream: { url: stalled.url, requestTimeout: 300 } })
  const init = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  await init.text()
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-11-25' }
  const started = Date.now()
  const calls = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const res = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: i + 10, method: 'tools/call', params: { name: 'x' } }) })
    return await res.json() as { id: number, error: { code: number } }
  }))
  t.ok(Date.now() - started < 3000, 'answered when the timeout passed')
  t.same(calls.map((c) => c.error.code), Array(10).fill(-32061))
  t.same(calls.map((c) => c.id), Array.from({ length: 10 }, (_, i) => i + 10), 'each error carries its request id')
  await eventually(() => gw.app.mcpStreams.openWriters === 0)
  t.pass('no stream writer left behind')
})
