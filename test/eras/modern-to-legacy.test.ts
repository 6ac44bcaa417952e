/**
 * A 2026-07-28 client (SDK 2.x) to a 2025-era upstream (SDK 1.x) through the gateway, which holds
 * upstream sessions for the stateless client: discover from initialize, elicitation as an
 * input_required round trip, list changes on subscriptions/listen.
 */
import t from 'tap'
import { gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient } from '../helpers/eras.ts'

t.test('2026 client, 2025 upstream: sessions held for it, pooled (the flows: pairings.test.ts)', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const client = await modernClient(t, gw.url, { onElicit: () => ({ ok: true }) })
  t.equal(client.getServerVersion()?.name, 'demo-upstream', 'server/discover answered from the upstream\'s initialize')
  t.same((await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } })).structuredContent, { sum: 42 })
  t.equal(textOf(await client.callTool({ name: 'confirm', arguments: { question: 'go?' } })), 'confirmed')
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'again' } })), 'again')
  t.equal(await gw.app.mcpSessions.count(), 0, 'the client holds no gateway session')
  const metrics = await (await fetch(new URL('/metrics', gw.url))).text()
  t.match(metrics, /mcp_gateway_requests_by_era_total\{upstream="default",client_era="2026",upstream_era="2025"\} [1-9]/, 'counted by both eras')
  const inits = up.record.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'initialize').length
  t.ok(inits >= 1 && inits <= 4, `the gateway initialised ${inits} upstream session(s) for it, reused across calls`)
})

t.test('with auth, the upstream sessions held for stateless clients are per principal', async (t) => {
  const up = await upstream(t)
  const keys = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }, { name: 'bob', key: 'bob-key-0123456789abcdef' }]
  const gw = await gateway(t, { upstream: up.url, auth: { apiKeys: { keys } } })
  const send = async (key: string, text: string): Promise<number> => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${key}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } })
    })
    await res.text()
    return res.status
  }
  for (let i = 0; i < 3; i++) t.same([await send(keys[0]?.key as string, 'from-alice'), await send(keys[1]?.key as string, 'from-bob')], [200, 200])
  // (The very first request went as it was, without a session, before the gateway knew the era.)
  const sessionsOf = (text: string): Set<unknown> => new Set(up.record.requests.filter((r) => JSON.stringify(r.body ?? '').includes(text) && r.headers['mcp-session-id'] !== undefined).map((r) => r.headers['mcp-session-id']))
  const alice = sessionsOf('from-alice')
  const bob = sessionsOf('from-bob')
  t.equal(alice.size, 1, 'alice\'s calls share one upstream session')
  t.equal(bob.size, 1)
  t.notOk([...alice].some((id) => bob.has(id)), 'never one of bob\'s')
})
