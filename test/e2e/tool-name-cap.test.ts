/**
 * A client's `tools/call` whose tool name is longer than `MAX_TOOL_NAME_LENGTH` is refused where
 * its body is parsed (HTTP POST and WebSocket frame) with HTTP 400 / JSON-RPC -32602 and a message
 * naming the cap, before any glob (interceptor, rule, authorization) is matched on it; a name at
 * the cap goes through.
 */
import t from 'tap'
import { wsFrames } from '../helpers/ws-frames.ts'
import { MAX_TOOL_NAME_LENGTH } from '../../lib/jsonrpc.ts'
import { gateway, upstream } from '../helpers/peers.ts'
import { initializeBody, openSession, postHeaders } from '../helpers/http.ts'

const callBody = (name: string, id = 7): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } })

t.test('over HTTP', async (t) => {
  const up = await upstream(t)
  let matched = 0
  const gw = await gateway(t, { upstream: up.url, interceptors: { interceptors: [{ name: 'count', match: { direction: 'client_to_upstream', tool: '*' }, handler: () => { matched++ } }] } })
  const sessionId = await openSession(gw.url)
  const headers = postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' })

  const long = await fetch(gw.url, { method: 'POST', headers, body: callBody('x'.repeat(MAX_TOOL_NAME_LENGTH + 1)) })
  t.equal(long.status, 400)
  const body = await long.json() as { error: { code: number, message: string } }
  t.equal(body.error.code, -32602)
  t.equal(body.error.message, `Invalid params: tool name is longer than ${MAX_TOOL_NAME_LENGTH} characters`)
  t.equal(matched, 0, 'no interceptor saw it')
  t.notOk(up.record.requests.some((r) => JSON.stringify(r.body ?? null).includes('x'.repeat(MAX_TOOL_NAME_LENGTH + 1))), 'never reached the upstream')

  const huge = await fetch(gw.url, { method: 'POST', headers, body: callBody('d'.repeat(1 << 20)) })
  t.equal(huge.status, 400, 'a 1 MiB name: refused at once')
  t.equal((await huge.json() as { error: { code: number } }).error.code, -32602)

  const batch = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: `[${initializeBody()},${callBody('y'.repeat(MAX_TOOL_NAME_LENGTH + 1))}]` })
  t.equal(batch.status, 400, 'in a batch too')
  t.equal((await batch.json() as { error: { code: number } }).error.code, -32602)

  const atCap = await fetch(gw.url, { method: 'POST', headers, body: callBody('z'.repeat(MAX_TOOL_NAME_LENGTH)) })
  t.equal(atCap.status, 200, 'a name at the cap goes through')
  await atCap.text()
  t.equal(matched, 1, 'and meets the interceptors')
})

t.test('over WebSocket', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, websocket: true })
  const { socket, next } = await wsFrames(t, gw.url)
  socket.send(initializeBody())
  t.ok((await next()).result, 'initialized')
  socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  socket.send(callBody('x'.repeat(MAX_TOOL_NAME_LENGTH + 1), 9))
  const refused = await next()
  t.equal(refused.id, 9, 'answered for its id')
  t.equal(refused.error?.code, -32602)
  t.equal(refused.error?.message, `Invalid params: tool name is longer than ${MAX_TOOL_NAME_LENGTH} characters`)
  t.notOk(up.record.requests.some((r) => JSON.stringify(r.body ?? null).includes('x'.repeat(MAX_TOOL_NAME_LENGTH + 1))), 'never reached the upstream')
})
