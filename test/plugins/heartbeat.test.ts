/** A dead upstream session is found by the heartbeat, and its client gets 404 (so it re-initialises). */
import t from 'tap'
import { badUpstream } from '../helpers/bad-upstream.ts'
import { openSession, postHeaders, type RpcError } from '../helpers/http.ts'
import { eventually, gateway, upstream } from '../helpers/peers.ts'

t.test('an upstream that forgot the session (restart): the heartbeat ends it; the client gets 404', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, heartbeat: { intervalMs: 100 } })
  const sessionId = await openSession(gw.url)
  const alive = await openSession(gw.url)
  // The upstream restarts and forgets one session (the other stays known).
  const upstreamId = (await gw.app.mcpSessions.store.get(sessionId))?.upstreamSessionId as string
  const del = await fetch(up.url, { method: 'DELETE', headers: { 'mcp-session-id': upstreamId, 'mcp-protocol-version': '2025-11-25' } })
  await del.text()
  await eventually(() => gw.app.mcpSessions.counts.ended === 1, 3000)
  t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined)
  t.ok(await gw.app.mcpSessions.store.get(alive), 'a live upstream session is kept')
  const aliveUpstreamId = (await gw.app.mcpSessions.store.get(alive))?.upstreamSessionId as string
  // Pings only: `notifications/initialized` and the like go to the same sessions.
  const pingsTo = (id: string): number => up.record.requests.filter((r) => r.method === 'POST' && r.headers['mcp-session-id'] === id && (r.body as { method?: string } | undefined)?.method === 'ping').length
  t.equal(pingsTo(upstreamId), 1, 'the forgotten session was pinged once: its 404 ended it at once')
  await eventually(() => pingsTo(aliveUpstreamId) >= 1, 3000)
  t.pass('the live idle session is pinged too')
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(res.status, 404)
  t.equal(((await res.json()) as RpcError).error.code, -32001)
})

t.test('an upstream that keeps failing pings: the session ends after maxFailures', async (t) => {
  const bad = await badUpstream(t, 'http-500')
  const gw = await gateway(t, { upstream: bad.url, heartbeat: { intervalMs: 50, maxFailures: 3 } })
  const sessionId = await openSession(gw.url)
  const pings = (): number => bad.seen.filter((body) => body.includes('"method":"ping"')).length
  await eventually(() => gw.app.mcpSessions.counts.ended === 1, 3000)
  t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined)
  t.equal(pings(), 3, 'ended by its third failed ping in a row, not before')
})
