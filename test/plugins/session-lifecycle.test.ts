/** Sessions end: idle ones are reaped with everything they held, and the cap answers 503. */
import t from 'tap'
import { eventually, gateway, upstream } from '../helpers/peers.ts'
import { initializeBody, openSession, postHeaders, type RpcError } from '../helpers/http.ts'

t.test('an idle session is reaped: upstream told, streams and log freed, client gets 404', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, sessions: { idleTimeoutMs: 300, sweepIntervalMs: 50 } })
  const sessionId = await openSession(gw.url)
  const upstreamId = up.record.requests.at(-1)?.headers['mcp-session-id'] as string
  // It leaves a logged POST stream behind.
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } })
  })
  await res.text()
  t.ok((await gw.app.mcpEvents.stats()).events > 0)
  await eventually(() => up.record.closedSessions.includes(upstreamId), 3000)
  t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined, 'gone from the store')
  t.same(await gw.app.mcpEvents.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'its event log is freed')
  t.equal(gw.app.mcpSessions.counts.expired, 1)
  const after = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: '{"jsonrpc":"2.0","id":2,"method":"ping"}' })
  t.equal(after.status, 404)
  t.equal(((await after.json()) as RpcError).error.code, -32001)
})

t.test('a session whose client listens on its stream is not idle', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, sessions: { idleTimeoutMs: 300, sweepIntervalMs: 50 }, streaming: { keepAliveMs: 100 } })
  const sessionId = await openSession(gw.url)
  const abort = new AbortController()
  const get = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, signal: abort.signal })
  t.equal(get.status, 200)
  const reading = get.text().catch(() => '')
  await new Promise((resolve) => setTimeout(resolve, 900))
  t.ok(await gw.app.mcpSessions.store.get(sessionId), 'still alive after three idle timeouts')
  abort.abort()
  await reading
  await eventually(() => gw.app.mcpSessions.counts.expired === 1, 3000)
  t.equal(gw.app.mcpStreams.openWriters, 0)
})

t.test('past the session cap, initialize gets 503 with Retry-After', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, sessions: { maxSessions: 2 } })
  await openSession(gw.url)
  const second = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: initializeBody(3) })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '5')
  const body = await res.json() as RpcError
  t.equal(body.error.code, -32053)
  t.equal(body.id, 3)
  t.equal(gw.app.mcpSessions.counts.rejected, 1)
  const del = await fetch(gw.url, { method: 'DELETE', headers: { 'mcp-session-id': second } })
  t.equal(del.status, 200)
  await del.text()
  await openSession(gw.url)
  t.pass('room again after a DELETE')
})
