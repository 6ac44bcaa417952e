/**
 * A 2026-07-28 client (SDK 2.x) to a 2025-era upstream (SDK 1.x) through the gateway, which holds
 * upstream sessions for the stateless client: discover from initialize, elicitation as an
 * input_required round trip, list changes on subscriptions/listen.
 */
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
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
  t.ok(inits >= 1, `the gateway initialised ${inits} upstream session(s) for it`)
  // Auth off: each request had an upstream session of its own, ended after it.
  await eventually(() => up.record.closedSessions.length === inits)
  t.equal(up.record.closedSessions.length, inits, 'every upstream session held for it was ended')
})

/** A 2026 `tools/call` of echo, as a stateless client sends it. */
async function statelessEcho (url: string, text: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Promise<{ status: number, body: { result?: Record<string, unknown>, error?: { code: number, message: string } } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text }, ...extra, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } })
  })
  const text2 = await res.text()
  const data = text2.startsWith('{') ? text2 : (/^data: (.*)$/m.exec(text2)?.[1] ?? '{}')
  return { status: res.status, body: JSON.parse(data) }
}

t.test('auth off: two stateless clients never share an upstream session (no per-session state crosses)', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  // Interleaved, as two unrelated clients would send them; the first one also finds the era.
  for (let i = 0; i < 3; i++) {
    t.equal((await statelessEcho(gw.url, `from-a-${i}`)).status, 200)
    t.equal((await statelessEcho(gw.url, `from-b-${i}`)).status, 200)
  }
  const sessionOf = (text: string): unknown => up.record.requests.find((r) => JSON.stringify(r.body ?? '').includes(text) && r.headers['mcp-session-id'] !== undefined)?.headers['mcp-session-id']
  const used = ['a', 'b'].flatMap((who) => [1, 2].map((i) => sessionOf(`from-${who}-${i}`)))
  t.equal(used.filter((id) => id !== undefined).length, 4, 'each call went on an upstream session')
  t.equal(new Set(used).size, 4, 'no two requests shared one, so nothing one client set there reached the other')
  await eventually(() => used.every((id) => up.record.closedSessions.includes(id as string)))
  t.pass('each was ended after its request')
})

t.test('with auth, a requestState token is its principal\'s: another principal\'s retry cannot continue the call', async (t) => {
  const up = await upstream(t)
  const keys = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }, { name: 'bob', key: 'bob-key-0123456789abcdef' }]
  const gw = await gateway(t, { upstream: up.url, auth: { apiKeys: { keys } } })
  const as = (who: number): Record<string, string> => ({ authorization: `Bearer ${keys[who]?.key as string}` })
  t.equal((await statelessEcho(gw.url, 'warm-up', as(0))).status, 200)
  const confirm = async (who: number, extra: Record<string, unknown>): Promise<{ result?: Record<string, unknown>, error?: { code: number, message: string } }> => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'confirm', ...as(who) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'confirm', arguments: { question: 'go?' }, ...extra, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } } } })
    })
    const text = await res.text()
    return JSON.parse(text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}'))
  }
  const first = await confirm(0, {})
  t.equal(first.result?.resultType, 'input_required', 'alice is asked')
  const token = first.result?.requestState as string
  const inputResponses = { 'input-1': { action: 'accept', content: { ok: true } } }
  const stolen = await confirm(1, { requestState: token, inputResponses })
  t.equal(stolen.error?.code, -32602, 'bob\'s retry with alice\'s token is refused')
  t.match(stolen.error?.message, /unknown requestState/)
  const own = await confirm(0, { requestState: token, inputResponses })
  t.match(JSON.stringify(own.result), /confirmed/, 'alice\'s own retry completes her call')
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

t.test('the sessions held for one principal are capped, concurrent requests included', async (t) => {
  const up = await upstream(t)
  const keys = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }]
  const gw = await gateway(t, { upstream: up.url, auth: { apiKeys: { keys } } })
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'wait', authorization: `Bearer ${keys[0]?.key as string}` }
  t.equal((await statelessEcho(gw.url, 'warm-up', { authorization: headers.authorization })).status, 200)
  const wait = async (): Promise<{ status: number, code?: number }> => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'wait', arguments: { ms: 1500 }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } })
    })
    const text = await res.text()
    return { status: res.status, code: res.status === 200 ? undefined : (JSON.parse(text) as { error: { code: number } }).error.code }
  }
  const results = await Promise.all(Array.from({ length: 36 }, wait))
  const ok = results.filter((r) => r.status === 200).length
  const full = results.filter((r) => r.status === 503 && r.code === -32056).length
  t.equal(ok, 32, 'as many as the per-key cap')
  t.equal(full, 4, 'the rest: 503 -32056 (retry later), not a 33rd session')
})

/**
 * The demo upstream behind a front that answers GET with 404 (as a server with no GET route does);
 * `fail: 'ack'` answers `notifications/initialized` with 500, `fail: 'init'` answers `initialize`
 * with 500 and a session id. It counts the GET answers it finished sending, and DELETEs.
 */
async function front (t: Parameters<typeof upstream>[0], target: string, fail?: 'ack' | 'init'): Promise<{ url: string, gets: number, deleted: string[] }> {
  const seen = { url: '', gets: 0, deleted: [] as string[] }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      if (req.method === 'GET') {
        res.once('finish', () => { seen.gets++ })
        res.writeHead(404).end()
        return
      }
      if (req.method === 'DELETE') seen.deleted.push(String(req.headers['mcp-session-id']))
      if (fail === 'ack' && body.includes('notifications/initialized')) {
        res.writeHead(500).end()
        return
      }
      if (fail === 'init' && body.includes('"initialize"')) {
        res.writeHead(500, { 'mcp-session-id': 'doomed' }).end()
        return
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name !== 'host' && name !== 'content-length').map(([name, value]) => [name, String(value)]))
      fetch(target, { method: req.method, headers, body: req.method === 'POST' ? body : undefined }).then(async (answer) => {
        res.writeHead(answer.status, Object.fromEntries(answer.headers))
        res.end(Buffer.from(await answer.arrayBuffer()))
      }, () => res.destroy())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  seen.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return seen
}

t.test('an upstream without a GET route (404): its pooled sessions are kept, not forgotten at once', async (t) => {
  const up = await upstream(t)
  const edge = await front(t, up.url)
  const keys = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }]
  const gw = await gateway(t, { upstream: edge.url, auth: { apiKeys: { keys } } })
  const as = { authorization: `Bearer ${keys[0]?.key as string}` }
  t.equal((await statelessEcho(gw.url, 'first', as)).status, 200)
  t.equal((await statelessEcho(gw.url, 'second', as)).status, 200)
  await eventually(() => edge.gets >= 1)
  // The GET's 404 has been seen by now; each call after it still goes on the same session.
  for (const text of ['third', 'fourth']) t.equal((await statelessEcho(gw.url, text, as)).status, 200)
  const sessions = new Set(up.record.requests.filter((r) => /second|third|fourth/.test(JSON.stringify(r.body ?? ''))).map((r) => r.headers['mcp-session-id']))
  t.equal(sessions.size, 1, 'one upstream session for all of them')
  t.equal(up.record.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'initialize').length, 1, 'initialised once')
})

for (const fail of ['ack', 'init'] as const) {
  const when = fail === 'ack' ? 'after initialize (its notifications/initialized fails)' : 'at initialize (a 500 naming a session id)'
  t.test(`an upstream session whose opening fails ${when} is ended upstream`, async (t) => {
    const up = await upstream(t)
    const edge = await front(t, up.url, fail)
    const keys = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }]
    const gw = await gateway(t, { upstream: edge.url, auth: { apiKeys: { keys } } })
    const as = { authorization: `Bearer ${keys[0]?.key as string}` }
    await statelessEcho(gw.url, 'probe', as)
    const failed = await statelessEcho(gw.url, 'fails', as)
    t.equal(failed.body.error?.code, -32063, 'the upstream\'s HTTP 500, coded')
    // Sessions the upstream gave out: one per initialize it answered (ack case), or the one the front named.
    const opened = fail === 'init' ? 1 : up.record.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'initialize').length
    t.ok(opened >= 1, 'a session was opened for it')
    await eventually(() => edge.deleted.length >= opened)
    t.equal(edge.deleted.length, opened, 'and each was ended upstream')
    if (fail === 'init') t.same(edge.deleted, ['doomed'], 'the one it named')
  })
}
