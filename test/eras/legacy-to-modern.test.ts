/**
 * A 2025-era client (SDK 1.x) to a 2026-07-28 upstream (SDK 2.x) through the era bridge: the
 * gateway answers initialize from server/discover, holds the session, adds the 2026 envelope,
 * turns input_required into an elicitation request on the call's stream, and logs every event
 * so a cut stream resumes with Last-Event-ID.
 */
import t from 'tap'
import { client, gateway, textOf } from '../helpers/peers.ts'
import { modernUpstream } from '../helpers/eras.ts'
import { SseParser } from '../../lib/sse/parser.ts'

t.test('2025 client, 2026 upstream: what the bridge sends and keeps (the flows: pairings.test.ts)', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const { client: c, transport } = await client(t, gw.url, { onElicit: () => ({ ok: true }) })
  t.equal(c.getServerVersion()?.name, 'modern-upstream', 'initialize answered from server/discover')
  const initializes = (): number => up.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'initialize').length
  // The first one went to the upstream as it was (the era was not known yet) and its refusal
  // taught the gateway the era; from then on initialize stays at the gateway.
  const first = initializes()
  t.ok(first <= 1, 'at most the first initialize reached the upstream')
  await client(t, gw.url)
  t.equal(initializes(), first, 'later ones never do')
  t.ok((await c.listTools()).tools.some((tool) => tool.name === 'confirm'))
  t.same((await c.callTool({ name: 'add', arguments: { a: 1, b: 41 } })).structuredContent, { sum: 42 })
  t.equal(textOf(await c.callTool({ name: 'confirm', arguments: { question: 'ship it?' } })), 'confirmed', 'input_required became an elicitation and the retry answered')
  const call = up.requests.filter((r) => (r.body as { params?: { name?: string } } | undefined)?.params?.name === 'confirm')
  t.equal(call.length, 2, 'the upstream saw the call and its retry')
  t.ok((call[1]?.body as { params: { inputResponses?: unknown } }).params.inputResponses !== undefined, 'the retry carried the answers')
  t.equal(call[0]?.headers['mcp-method'], 'tools/call', 'the bridge adds the 2026 headers')
  t.equal(call[0]?.headers['mcp-name'], 'confirm')

  t.same(await c.ping(), {}, 'ping is answered by the gateway (2026 dropped it)')
  const metrics = await (await fetch(new URL('/metrics', gw.url))).text()
  t.match(metrics, /mcp_gateway_requests_by_era_total\{upstream="default",client_era="2025",upstream_era="2026"\} [1-9]/, 'counted by both eras')
  await transport.terminateSession()
})

t.test('a 2025-03-26 batch to a 2026 upstream is split into 2026 requests', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: { url: up.url, protocol: '2026' } })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const init = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) })
  await init.text()
  const session = { ...headers, 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-03-26' }
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: session,
    body: JSON.stringify([
      { jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'echo', arguments: { text: 'one' } } },
      { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 1 } } }
    ])
  })
  const text = await res.text()
  t.match(text, /"id":"a".*"one"|"one".*"id":"a"/s)
  t.match(text, /"sum":2/)
  const calls = up.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'tools/call')
  t.equal(calls.length, 2, 'two 2026 requests upstream')
  t.ok(calls.every((r) => !Array.isArray(r.body)), 'none of them a batch')
})

t.test('a cut stream resumes with Last-Event-ID (the gateway logs what 2026 does not)', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
  const init = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) })
  await init.text()
  const session = { ...headers, 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-11-25' }
  await (await fetch(gw.url, { method: 'POST', headers: session, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).text()
  const abort = new AbortController()
  const res = await fetch(gw.url, { method: 'POST', headers: session, signal: abort.signal, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { from: 10, delayMs: 30 }, _meta: { progressToken: 'p' } } }) })
  const events: Array<{ id?: string, data: string }> = []
  const parser = new SseParser({ onEvent: (event) => events.push(event) })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  while (events.filter((e) => e.data.includes('progress')).length < 3) parser.push((await reader.read()).value as Uint8Array)
  abort.abort()
  const last = [...events].reverse().find((e) => e.id !== undefined)?.id as string
  const before = events.filter((e) => e.data.includes('progress')).map((e) => (JSON.parse(e.data) as { params: { progress: number } }).params.progress)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const resumed = await fetch(gw.url, { headers: { ...session, accept: 'text/event-stream', 'last-event-id': last } })
  const rest: Array<{ data: string }> = []
  const more = new SseParser({ onEvent: (event) => rest.push(event) })
  const r2 = (resumed.body as ReadableStream<Uint8Array>).getReader()
  while (!rest.some((e) => e.data.includes('liftoff'))) more.push((await r2.read()).value as Uint8Array)
  await r2.cancel()
  const after = rest.filter((e) => e.data.includes('progress')).map((e) => (JSON.parse(e.data) as { params: { progress: number } }).params.progress)
  t.same([...before, ...after], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every progress event once, in order, across the cut')
})
