/** close() must resolve promptly whatever clients hold open: SSE streams, spare sockets. */
import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { client, gateway, upstream } from '../helpers/peers.ts'
import { openSession } from '../helpers/http.ts'

t.test('close() with 100 open GET streams resolves promptly', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const streams: Array<Promise<unknown>> = []
  for (let i = 0; i < 100; i++) {
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } })
    t.equal(res.status, 200) || t.end()
    streams.push(res.text().catch((err: unknown) => err))
  }
  const started = Date.now()
  await gw.app.close()
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
  const ends = await Promise.all(streams)
  t.equal(ends.length, 100, 'every client stream ended')
})

t.test('close() is not held by a socket that never sent a request, nor by an SDK client that went away', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  await c.listTools()
  await c.close()
  // A pre-connected socket that never speaks, as Node's fetch opens after an aborted stream.
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  await once(socket, 'connect')
  const closed = once(socket, 'close')
  const started = Date.now()
  await gw.app.close()
  await closed
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
})

t.test('a request in flight at close() still gets its answer', async (t) => {
  const up = await upstream(t, { jsonResponse: true })
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  const call = c.callTool({ name: 'wait', arguments: { ms: 300 } })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const closing = gw.app.close()
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'waited' }])
  await closing
})

t.test('close() lets an SSE answer on its way finish, then ends streams', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  const call = c.callTool({ name: 'wait', arguments: { ms: 400 } })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  const closing = gw.app.close()
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'waited' }], 'the call completed')
  await closing
  t.ok(Date.now() - started >= 250, 'close waited for it')
})

t.test('past drainTimeoutMs, close() ends the streams with a retry hint and resolves', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { drainTimeoutMs: 100, retryMs: 1234 } })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'wait', arguments: { ms: 10_000 } } })
  })
  const text = res.text()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  await gw.app.close()
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`)
  const body = await text
  t.match(body, /retry: 1234\n\n$/, 'the stream ended with a retry hint')
})

t.test('an answer not yet started when close() begins is waited for too, resumable from its first event', async (t) => {
  const up = await upstream(t)
  // The request reaches the upstream only after close() has begun (held by an interceptor).
  const gw = await gateway(t, { upstream: up.url }, (app) => {
    app.mcpInterceptors.add({ name: 'slow-start', match: { direction: 'client_to_upstream', tool: 'echo' }, handler: async () => ({ action: 'delay', ms: 300 }) })
  })
  const { client: c } = await client(t, gw.url)
  const call = c.callTool({ name: 'echo', arguments: { text: 'made it' } })
  await new Promise((resolve) => setTimeout(resolve, 50))
  // With a shared log, shutdown's stream hand-over awaits the store: an answer that turned into a
  // stream meanwhile would be ended before its first event, leaving its client nothing to resume.
  t.ok(gw.app.mcpStreams.answering, 'a request on its way upstream counts as an answer on its way')
  const started = Date.now()
  const closing = gw.app.close()
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'made it' }], 'the call completed')
  await closing
  t.ok(Date.now() - started >= 200, 'close waited for it')
})
