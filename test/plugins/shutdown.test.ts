/**
 * close() resolves promptly whatever clients hold open (SSE streams, spare sockets), ends every
 * stream with a `retry:` hint after its last event, and waits for answers on their way first.
 * Order is asserted on the events themselves (the answer, close() resolving), never on sleeps.
 */
import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { SseParser } from '../../lib/sse/parser.ts'
import type { SseEvent } from '../../lib/sse/encode.ts'
import { client, eventually, gateway, upstream } from '../helpers/peers.ts'
import { openSession } from '../helpers/http.ts'

const SESSION_HEADERS = (sessionId: string): Record<string, string> => ({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' })

function eventsOf (text: string): SseEvent[] {
  const events: SseEvent[] = []
  const parser = new SseParser({ onEvent: (event) => events.push(event), onComment: () => {} })
  parser.push(new TextEncoder().encode(text))
  return events
}

/** Records, in order, which of the named promises settled first. */
function recorder (): { order: string[], track: <T>(name: string, promise: Promise<T>) => Promise<T> } {
  const order: string[] = []
  return {
    order,
    track: async (name, promise) => {
      try {
        return await promise
      } finally {
        order.push(name)
      }
    }
  }
}

t.test('close() with 100 open GET streams resolves promptly, each stream ended with the retry hint after its priming event', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { retryMs: 4321 } })
  const bodies: Array<Promise<string>> = []
  for (let i = 0; i < 100; i++) {
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, { headers: { accept: 'text/event-stream', ...SESSION_HEADERS(sessionId) } })
    t.equal(res.status, 200) || t.end()
    bodies.push(res.text())
  }
  const started = Date.now()
  await gw.app.close()
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
  const ends = await Promise.allSettled(bodies)
  const clean = ends.filter((end) => end.status === 'fulfilled' && /retry: 4321\n\n$/.test(end.value))
  t.equal(clean.length, 100, 'every stream ended cleanly, its last field the retry hint')
  const last = eventsOf((ends[0] as PromiseFulfilledResult<string>).value).at(-1)
  t.ok(last?.id !== undefined && last.data === '', 'the last event is the priming one: an id to resume from, no data')
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

t.test('a JSON answer in flight at close() is delivered before close() resolves', async (t) => {
  const up = await upstream(t, { jsonResponse: true })
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  const { order, track } = recorder()
  const call = track('answered', c.callTool({ name: 'wait', arguments: { ms: 300 } }, undefined, { timeout: 5000 }))
  await eventually(() => gw.app.mcpStreams.answering)
  const closing = track('closed', gw.app.close())
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'waited' }])
  await closing
  t.same(order, ['answered', 'closed'], 'close() waited for the answer')
})

t.test('close() lets an SSE answer on its way finish, then ends streams', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  const { order, track } = recorder()
  const call = track('answered', c.callTool({ name: 'wait', arguments: { ms: 400 } }, undefined, { timeout: 5000 }))
  await eventually(() => gw.app.mcpStreams.answering)
  const closing = track('closed', gw.app.close())
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'waited' }], 'the call completed')
  await closing
  t.same(order, ['answered', 'closed'], 'close() waited for the answer')
})

t.test('past drainTimeoutMs, close() ends the stream after its priming event with the retry hint, and resolves', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { drainTimeoutMs: 600, retryMs: 1234 } })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...SESSION_HEADERS(sessionId) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'wait', arguments: { ms: 10_000 } } })
  })
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  const text = res.text()
  const started = Date.now()
  await gw.app.close()
  const took = Date.now() - started
  t.ok(took >= 600 && took < 2500, `drained for drainTimeoutMs, then closed (${took} ms)`)
  const body = await text
  t.match(body, /retry: 1234\n\n$/, 'the stream ended with a retry hint')
  const events = eventsOf(body)
  t.equal(events.length, 1, 'one event: no answer yet')
  t.ok(events[0]?.id !== undefined && events[0].data === '', 'the priming event, the client\'s point to resume from')
})

t.test('an answer not yet started when close() begins is waited for too, resumable from its first event', async (t) => {
  const up = await upstream(t)
  let held: () => void = () => {}
  const reached = new Promise<void>((resolve) => { held = resolve })
  // The request reaches the upstream only after close() has begun (held by an interceptor).
  const gw = await gateway(t, { upstream: up.url }, (app) => {
    app.mcpInterceptors.add({
      name: 'slow-start',
      match: { direction: 'client_to_upstream', tool: 'echo' },
      handler: async () => {
        held()
        return { action: 'delay', ms: 300 }
      }
    })
  })
  const { client: c } = await client(t, gw.url)
  const { order, track } = recorder()
  const call = track('answered', c.callTool({ name: 'echo', arguments: { text: 'made it' } }, undefined, { timeout: 5000 }))
  await reached
  // With a shared log, shutdown's stream hand-over awaits the store: an answer that turned into a
  // stream meanwhile would be ended before its first event, leaving its client nothing to resume.
  t.ok(gw.app.mcpStreams.answering, 'a request on its way upstream counts as an answer on its way')
  const closing = track('closed', gw.app.close())
  const result = await call
  t.same(result.content, [{ type: 'text', text: 'made it' }], 'the call completed')
  await closing
  t.same(order, ['answered', 'closed'], 'close() waited for it')
})
