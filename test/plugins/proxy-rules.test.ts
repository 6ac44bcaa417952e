/** Status and header rules of the MCP endpoint, over real sockets, with the real SDK server upstream. */
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import mcpProxy from '../../plugins/proxy.ts'
import mcpSessions from '../../plugins/sessions.ts'
import mcpCore from '../../plugins/core.ts'
import mcpGateway from '../../plugins/index.ts'
import { gateway, upstream } from '../helpers/peers.ts'
import { ACCEPT_BOTH, initializeBody, openSession, postHeaders } from '../helpers/http.ts'

async function rpcError (t: Test, res: Response): Promise<{ id: unknown, code: number, message: string }> {
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = await res.json() as { jsonrpc: string, id: unknown, error: { code: number, message: string } }
  t.equal(body.jsonrpc, '2.0')
  return { id: body.id, code: body.error.code, message: body.error.message }
}

t.test('request rules', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { url: up.url, headers: { authorization: 'Bearer upstream-secret' } }, bodyLimit: 1024 })
  const post = (body: string | Uint8Array, headers: Record<string, string> = postHeaders()): Promise<Response> =>
    fetch(gw.url, { method: 'POST', headers, body })

  t.test('a body over the limit gets 413', async (t) => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(2000) } }))
    t.equal(res.status, 413)
    const err = await rpcError(t, res)
    t.equal(err.code, -32051)
    t.equal(err.id, null)
    t.match(err.message, /bodyLimit of 1024 bytes/, 'the error names the limit')
  })

  t.test('a body far over the limit (refused on its content-length, unread) gets the same answer, its data naming the limit', async (t) => {
    const res = await post(new Uint8Array(1_000_000).fill(32))
    t.equal(res.status, 413)
    const body = await res.json() as { error: { code: number, data?: unknown } }
    t.equal(body.error.code, -32051)
    t.same(body.error.data, { limit: 'bodyLimit', bytes: 1024 })
  })

  t.test('a session request names a version that exists in its era, and the upstream gets the negotiated one', async (t) => {
    const sessionId = await openSession(gw.url)
    for (const version of ['1999-01-01', '2026-07-28', 'latest']) {
      const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }), postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': version }))
      t.equal(res.status, 400, version)
      const err = await rpcError(t, res)
      t.equal(err.code, -32000)
      t.equal(err.id, 9)
      t.match(err.message, /unsupported MCP-Protocol-Version/)
    }
    const seen = up.record.requests.length
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'ping' }), postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' }))
    t.equal(res.status, 200)
    await res.text()
    t.equal(up.record.requests[seen]?.headers['mcp-protocol-version'], '2025-11-25', 'the negotiated version went upstream')
  })

  t.test('malformed JSON gets 400 / -32700', async (t) => {
    const res = await post('{"jsonrpc": "2.0", "id": 1,')
    t.equal(res.status, 400)
    t.equal((await rpcError(t, res)).code, -32700)
  })

  t.test('invalid UTF-8 gets 400 / -32700', async (t) => {
    const res = await post(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))
    t.equal(res.status, 400)
    t.equal((await rpcError(t, res)).code, -32700)
  })

  t.test('JSON that is not JSON-RPC gets 400 / -32600', async (t) => {
    for (const body of ['{"hello":"world"}', '[]', '[{"jsonrpc":"2.0","id":1,"method":"ping"},7]', '{"jsonrpc":"2.0","id":null,"method":"ping"}', '"text"']) {
      const res = await post(body)
      t.equal(res.status, 400, body)
      t.equal((await rpcError(t, res)).code, -32600, body)
    }
  })

  t.test('a body that is not JSON gets 415', async (t) => {
    const res = await post('ping', { 'content-type': 'text/plain', accept: ACCEPT_BOTH })
    t.equal(res.status, 415)
    t.equal((await rpcError(t, res)).code, -32052)
  })

  t.test('a foreign Origin gets 403; loopback origins pass', async (t) => {
    const res = await post(initializeBody(), postHeaders({ origin: 'https://evil.example' }))
    t.equal(res.status, 403)
    const err = await rpcError(t, res)
    t.equal(err.code, -32050)
    t.equal(err.id, null)
    const ok = await post(initializeBody(), postHeaders({ origin: 'http://localhost:5173' }))
    t.equal(ok.status, 200)
    await ok.text()
  })

  t.test('a request without a session gets 400; the id of a single request is echoed', async (t) => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 'abc', method: 'tools/list' }))
    t.equal(res.status, 400)
    const err = await rpcError(t, res)
    t.equal(err.code, -32000)
    t.equal(err.id, 'abc')
    const get = await fetch(gw.url, { headers: { accept: 'text/event-stream' } })
    t.equal(get.status, 400)
    await get.text()
  })

  t.test('an unknown or malformed session gets 404', async (t) => {
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'not a gateway id', 'x'.repeat(300)]) {
      const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), postHeaders({ 'mcp-session-id': id }))
      t.equal(res.status, 404)
      t.equal((await rpcError(t, res)).code, -32001)
    }
    const del = await fetch(gw.url, { method: 'DELETE', headers: { 'mcp-session-id': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })
    t.equal(del.status, 404)
    await del.text()
  })

  t.test('initialize cannot be batched, nor repeated in a session', async (t) => {
    const batch = await post(`[${initializeBody()}]`)
    t.equal(batch.status, 400)
    t.equal((await rpcError(t, batch)).code, -32600)
    const sessionId = await openSession(gw.url)
    const again = await post(initializeBody(2), postHeaders({ 'mcp-session-id': sessionId }))
    t.equal(again.status, 400)
    t.equal((await rpcError(t, again)).code, -32600)
  })

  t.test('batches: refused after 2025-03-26, relayed for 2025-03-26 sessions', async (t) => {
    const batch = JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' }])
    const modern = await openSession(gw.url, '2025-11-25')
    const refused = await post(batch, postHeaders({ 'mcp-session-id': modern, 'mcp-protocol-version': '2025-11-25' }))
    t.equal(refused.status, 400)
    const err = await rpcError(t, refused)
    t.equal(err.code, -32600)
    t.match(err.message, /2025-11-25/)

    const legacy = await openSession(gw.url, '2025-03-26')
    t.equal((await gw.app.mcpSessions.store.get(legacy))?.protocolVersion, '2025-03-26')
    const res = await post(batch, postHeaders({ 'mcp-session-id': legacy, 'mcp-protocol-version': '2025-03-26' }))
    t.equal(res.status, 200)
    const text = await res.text()
    t.match(text, /"id":1/)
    t.match(text, /"id":2/)
  })

  t.test('the session records the version the upstream negotiated', async (t) => {
    const sessionId = await openSession(gw.url, '2030-01-01')
    t.equal((await gw.app.mcpSessions.store.get(sessionId))?.protocolVersion, '2025-11-25')
  })

  t.test('methods other than POST, GET and DELETE get 405', async (t) => {
    const res = await fetch(gw.url, { method: 'PUT', headers: postHeaders(), body: '{}' })
    t.equal(res.status, 405)
    t.equal(res.headers.get('allow'), 'GET, POST, DELETE')
    await res.text()
  })

  t.test('client credentials never reach the upstream; configured ones do', async (t) => {
    const from = up.record.requests.length
    const sessionId = await openSession(gw.url)
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }), postHeaders({
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
      authorization: 'Bearer client-token',
      cookie: 'sid=client-cookie',
      'proxy-authorization': 'Basic abc',
      'x-forwarded-for': '10.0.0.1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    }))
    t.equal(res.status, 200)
    await res.text()
    const seen = up.record.requests.slice(from)
    t.ok(seen.length >= 3)
    for (const request of seen) {
      t.equal(request.headers.authorization, 'Bearer upstream-secret')
      t.equal(request.headers.cookie, undefined)
      t.equal(request.headers['proxy-authorization'], undefined)
      t.equal(request.headers['x-forwarded-for'], undefined)
      t.not(request.headers['mcp-session-id'], sessionId)
    }
    t.equal(seen.at(-1)?.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
  })

  t.test('a sessionless 2026-07-28 request to an upstream said to be 2026-era is forwarded as it is', async (t) => {
    const modern = await gateway(t, { upstream: { url: up.url, protocol: '2026' } })
    const post = (body: string, headers: Record<string, string>): Promise<Response> => fetch(modern.url, { method: 'POST', headers, body })
    const from = up.record.requests.length
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } }
    })
    const res = await post(body, postHeaders({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' }))
    // The 2025-era demo server refuses it; what matters is that it got it, unchanged and sessionless.
    t.equal(res.status, 400)
    await res.text()
    const seen = up.record.requests.slice(from)
    t.equal(seen.length, 1)
    t.equal(seen[0]?.headers['mcp-method'], 'tools/list')
    t.equal(seen[0]?.headers['mcp-session-id'], undefined)
    const batch = await post(`[${body}]`, postHeaders({ 'mcp-method': 'tools/list' }))
    t.equal(batch.status, 400)
    t.equal((await rpcError(t, batch)).code, -32600)
  })
})

t.test('options are checked at registration and name the bad option', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /"upstream"/],
    [{ upstream: 'ftp://x' }, /"upstream".*http/],
    [{ upstream: 'not a url' }, /"upstream"/],
    [{ upstream: { url: 'http://x', connections: 0 } }, /"upstream.connections"/],
    [{ upstream: { url: 'http://x', headers: { a: 1 } } }, /"upstream.headers.a"/],
    [{ upstream: { url: 'http://x', headers: { a: 'b\r\nc' } } }, /"upstream.headers.a"/],
    [{ upstream: 'http://x', path: 'mcp' }, /"path"/],
    [{ upstream: 'http://x', bodyLimit: -1 }, /"bodyLimit"/],
    [{ upstream: 'http://x', allowedOrigins: 'loopback' }, /"allowedOrigins"/],
    [{ upstream: 'http://x', sessions: 3 }, /"sessions"/],
    [{ upstream: 'http://x', sessions: { store: {} } }, /"store"/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    app.register(mcpGateway, options as never)
    await t.rejects(async () => { await app.ready() }, { code: 'MCP_GW_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }
  const caller = { upstream: { url: 'http://127.0.0.1:9/mcp' } }
  const frozen = JSON.stringify(caller)
  const app = Fastify()
  await app.register(mcpGateway, caller)
  await app.ready()
  t.equal(JSON.stringify(caller), frozen, 'the caller\'s options are not mutated')
  await app.close()
})

t.test('the proxy plugin needs the sessions plugin, which needs core, and works with them alone', async (t) => {
  const lone = Fastify()
  lone.register(mcpProxy, { upstream: 'http://127.0.0.1:9/mcp' })
  await t.rejects(async () => { await lone.ready() }, /mcp-gateway-sessions/)
  await lone.close()
  const noCore = Fastify()
  noCore.register(mcpSessions)
  await t.rejects(async () => { await noCore.ready() }, /mcp-gateway-core/)
  await noCore.close()

  const up = await upstream(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(mcpCore)
  await app.register(mcpSessions)
  await app.register(mcpProxy, { upstream: up.url, path: '/tools', allowedOrigins: ['https://app.example', 'loopback'] })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const ok = await fetch(`${address}/tools`, { method: 'POST', headers: postHeaders({ origin: 'https://app.example' }), body: initializeBody() })
  t.equal(ok.status, 200)
  await ok.text()
  const other = await fetch(`${address}/tools`, { method: 'POST', headers: postHeaders({ origin: 'https://other.example' }), body: initializeBody() })
  t.equal(other.status, 403)
  await other.text()
})
