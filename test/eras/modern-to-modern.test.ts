/** A 2026-07-28 client to a 2026-07-28 upstream through the gateway: stateless forwarding. */
import t from 'tap'
import { gateway } from '../helpers/peers.ts'
import { modernClient, modernUpstream } from '../helpers/eras.ts'

t.test('2026 client, 2026 upstream: stateless all the way (the flows: pairings.test.ts)', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const client = await modernClient(t, gw.url)
  t.same((await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).structuredContent, { sum: 5 })
  t.equal(await gw.app.mcpSessions.count(), 0, 'no gateway session for stateless traffic')
  t.notOk(up.requests.some((r) => r.headers['mcp-session-id'] !== undefined), 'no session id upstream either')
  const metrics = await (await fetch(new URL('/metrics', gw.url))).text()
  t.match(metrics, /mcp_gateway_requests_by_era_total\{upstream="default",client_era="2026",upstream_era="2026"\} [1-9]/, 'counted by both eras')
})

t.test('Mcp-Method / Mcp-Name / MCP-Protocol-Version must agree with the body (HeaderMismatch)', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } }
  const call = (name: string) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: { text: 'x' }, _meta: meta } })
  const send = async (headers: Record<string, string>, body: string): Promise<{ status: number, code?: number }> => {
    const res = await fetch(gw.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body })
    const json = await res.json() as { error?: { code: number } }
    return { status: res.status, code: json.error?.code }
  }
  const base = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }
  t.same(await send({ ...base, 'mcp-name': 'echo' }, call('echo')), { status: 200, code: undefined })
  t.same(await send({ ...base, 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }, call('echo')), { status: 200, code: undefined }, 'the Base64 sentinel form is decoded')
  t.same(await send({ ...base, 'mcp-name': 'add' }, call('echo')), { status: 400, code: -32020 }, 'a name that routes elsewhere than the body says')
  t.same(await send({ ...base }, call('echo')), { status: 400, code: -32020 }, 'Mcp-Name missing')
  t.same(await send({ ...base, 'mcp-method': 'tools/list', 'mcp-name': 'echo' }, call('echo')), { status: 400, code: -32020 }, 'Mcp-Method disagrees')
  t.same(await send({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, call('echo')), { status: 400, code: -32020 }, 'MCP-Protocol-Version missing')
  t.notOk(up.requests.some((r) => (r.body as { params?: { name?: string } } | undefined)?.params?.name === 'add'), 'nothing mismatched reached the upstream')
})
