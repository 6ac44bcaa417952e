/**
 * The host's own hooks on streamed answers: headers set by `@fastify/cors` and by an `onRequest`
 * hook reach the client on SSE answers and GET streams, as on JSON ones (a browser client must
 * not fail CORS only when an answer streams).
 */
import t from 'tap'
import Fastify from 'fastify'
import cors from '@fastify/cors'
import mcpGateway from '../../plugins/index.ts'
import { ACCEPT_BOTH, initializeBody } from '../helpers/http.ts'
import { upstream } from '../helpers/peers.ts'

const ORIGIN = 'https://app.example.com'

t.test('CORS and host headers on a preflight, a JSON answer, a streamed POST answer and a GET stream', async (t) => {
  const up = await upstream(t)
  const app = Fastify({ logger: false })
  await app.register(cors, { origin: ORIGIN, exposedHeaders: ['mcp-session-id'] })
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-request-trace', 'host-set') })
  await app.register(mcpGateway, { upstream: { url: up.url }, path: '/mcp', allowedOrigins: [ORIGIN] })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `${address}/mcp`

  const preflight = await fetch(url, {
    method: 'OPTIONS',
    headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id' }
  })
  t.equal(preflight.status, 204, 'preflight answered by @fastify/cors')
  t.equal(preflight.headers.get('access-control-allow-origin'), ORIGIN)

  const base = { origin: ORIGIN, 'content-type': 'application/json', accept: ACCEPT_BOTH }
  const init = await fetch(url, { method: 'POST', headers: base, body: initializeBody(1) })
  await init.text()
  const sessionId = init.headers.get('mcp-session-id') as string
  t.ok(sessionId, 'a session')
  t.equal(init.headers.get('access-control-allow-origin'), ORIGIN, 'on the initialize answer')
  t.equal(init.headers.get('access-control-expose-headers'), 'mcp-session-id')
  const session = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
  await (await fetch(url, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text()

  const streamed = await fetch(url, {
    method: 'POST',
    headers: session,
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { from: 2, delayMs: 1 }, _meta: { progressToken: 'p' } } })
  })
  t.equal(streamed.headers.get('content-type'), 'text/event-stream', 'the answer streams')
  t.equal(streamed.headers.get('access-control-allow-origin'), ORIGIN, 'CORS on the streamed POST answer')
  t.equal(streamed.headers.get('access-control-expose-headers'), 'mcp-session-id')
  t.equal(streamed.headers.get('x-request-trace'), 'host-set', 'the host hook\'s header on the streamed answer')
  t.match(await streamed.text(), /liftoff/)

  const abort = new AbortController()
  const get = await fetch(url, { method: 'GET', headers: { origin: ORIGIN, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, signal: abort.signal })
  t.equal(get.status, 200)
  t.equal(get.headers.get('content-type'), 'text/event-stream')
  t.equal(get.headers.get('access-control-allow-origin'), ORIGIN, 'CORS on the GET stream')
  t.equal(get.headers.get('x-request-trace'), 'host-set', 'the host hook\'s header on the GET stream')
  abort.abort()
  await get.body?.cancel().catch(() => {})
})
