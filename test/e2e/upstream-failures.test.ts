/**
 * An upstream that is down, slow, or answers garbage: the client gets a JSON-RPC error with the
 * documented status and code, never a hang, and other sessions keep working.
 */
import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { SseParser } from '../../lib/sse/parser.ts'
import { badUpstream, type BadMode } from '../helpers/bad-upstream.ts'
import { initializeBody, openSession, postHeaders, type RpcError } from '../helpers/http.ts'
import { MODES, client, eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { freePort } from '../helpers/ports.ts'

const call = (id: number | string, name: string, args: Record<string, unknown>): string =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })

async function sseMessages (res: Response): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = []
  const parser = new SseParser({ onEvent: (event) => { if (event.data !== '') out.push(JSON.parse(event.data)) } })
  parser.push(await res.text())
  parser.end()
  return out
}

t.test('an upstream that is down gives 502 / -32060', async (t) => {
  const gw = await gateway(t, { upstream: `http://127.0.0.1:${await freePort()}/mcp` })
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: initializeBody(7) })
  t.equal(res.status, 502)
  const body = await res.json() as RpcError
  t.equal(body.error.code, -32060)
  t.equal(body.id, 7, 'the error answers the request')
})

t.test('an upstream that does not answer in time gives 504 / -32061; other sessions keep working', async (t) => {
  const up = await upstream(t, { jsonResponse: true })
  const gw = await gateway(t, { upstream: { url: up.url, headersTimeout: 300 } })
  const slow = await openSession(gw.url)
  const { client: other } = await client(t, gw.url)
  const [res, echo] = await Promise.all([
    fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': slow, 'mcp-protocol-version': '2025-11-25' }), body: call(3, 'wait', { ms: 2000 }) }),
    other.callTool({ name: 'echo', arguments: { text: 'still here' } })
  ])
  t.equal(res.status, 504)
  t.equal((await res.json() as RpcError).error.code, -32061)
  t.equal(textOf(echo), 'still here')
  t.equal(textOf(await other.callTool({ name: 'echo', arguments: { text: 'after' } })), 'after')
})

const garbage: Array<[BadMode, number, number]> = [
  ['garbage-json', 502, -32062],
  ['html', 502, -32062],
  ['huge-json', 502, -32062],
  ['http-500', 502, -32063],
  ['http-401', 502, -32064]
]
for (const [mode, status, code] of garbage) {
  t.test(`an upstream answering ${mode} gives ${status} / ${code}`, async (t) => {
    const bad = await badUpstream(t, mode)
    const gw = await gateway(t, { upstream: bad.url, maxResponseBytes: 1024 })
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call(11, 'echo', {}) })
    t.equal(res.status, status)
    t.equal(res.headers.get('www-authenticate'), null, 'no upstream auth challenge reaches the client')
    const body = await res.json() as RpcError
    t.equal(body.error.code, code)
    t.equal(body.id, 11)
    t.ok(await gw.app.mcpSessions.store.get(sessionId), 'the session survives')
  })
}

t.test('an upstream that forgot the session: 404, and the gateway forgets it too', async (t) => {
  const bad = await badUpstream(t, 'http-404')
  const gw = await gateway(t, { upstream: bad.url })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call(1, 'echo', {}) })
  t.equal(res.status, 404)
  t.equal((await res.json() as RpcError).error.code, -32001)
  t.equal(await gw.app.mcpSessions.store.get(sessionId), undefined)
})

t.test('an SSE answer that ends or breaks before the response yields an error event, not a hang', async (t) => {
  for (const mode of ['sse-end-early', 'sse-reset'] as const) {
    const bad = await badUpstream(t, mode)
    const gw = await gateway(t, { upstream: bad.url })
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call('req-1', 'countdown', { from: 3 }) })
    t.equal(res.status, 200)
    const messages = await sseMessages(res)
    t.equal(messages[0]?.method, 'notifications/progress', `${mode}: the notification before the cut arrives`)
    const last = messages.at(-1) as { id: string, error: { code: number } }
    t.equal(last.id, 'req-1', mode)
    t.equal(last.error.code, mode === 'sse-end-early' ? -32065 : -32060, mode)
  }
})

t.test('an upstream that resumes a stream and ends it again with nothing: a bounded number of tries, then an error', async (t) => {
  const bad = await badUpstream(t, 'sse-resume-empty')
  const gw = await gateway(t, { upstream: bad.url })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call('req-2', 'countdown', { from: 3 }) })
  const last = (await sseMessages(res)).at(-1) as { id: string, error: { code: number } }
  t.equal(last.id, 'req-2')
  t.equal(last.error.code, -32060, 'upstream unavailable: it never answered')
  // Each empty resume is no progress: the tries are not renewed (they were, one after another, until the deadline).
  t.equal(bad.resumes, 10, 'ten resumes, no more')
})

t.test('SSE events that are not JSON-RPC are dropped; the rest passes', async (t) => {
  const bad = await badUpstream(t, 'sse-garbage')
  const gw = await gateway(t, { upstream: bad.url })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call(4, 'echo', {}) })
  const messages = await sseMessages(res)
  t.same(messages, [{ jsonrpc: '2.0', id: 4, result: { ok: true } }])
})

t.test('responses to no pending request (strays, duplicates) never reach the client', async (t) => {
  for (const mode of ['sse-stray', 'json-stray'] as const) {
    const bad = await badUpstream(t, mode)
    for (const streaming of [undefined, false] as const) {
      const gw = await gateway(t, { upstream: bad.url, ...(streaming === false ? { streaming } : {}) })
      const sessionId = await openSession(gw.url)
      const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call(5, 'echo', {}) })
      const answer = mode === 'sse-stray' ? await sseMessages(res) : [await res.json()].flat()
      t.same(answer, [{ jsonrpc: '2.0', id: 5, result: { ok: true } }], `${mode}${streaming === false ? ', without the event log' : ''}`)
    }
  }
})

t.test('a JSON answer missing a response, or answering twice: every request gets exactly one answer', async (t) => {
  const bad = await badUpstream(t, 'json-duplicate')
  for (const streaming of [undefined, false] as const) {
    const gw = await gateway(t, { upstream: bad.url, ...(streaming === false ? { streaming } : {}) })
    const sessionId = await openSession(gw.url)
    const post = (body: string): Promise<Response> => fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body })
    const label = streaming === false ? ' (without the event log)' : ''

    bad.mode = 'json-duplicate'
    let res = await post(call(5, 'echo', {}))
    t.same([await res.json()].flat(), [{ jsonrpc: '2.0', id: 5, result: { ok: true } }], `a second answer to one request is dropped${label}`)

    bad.mode = 'json-missing'
    res = await post(call(6, 'echo', {}))
    t.equal(res.status, 200)
    const missing = await res.json() as RpcError
    t.equal(missing.id, 6, `the request left unanswered is answered by the gateway${label}`)
    t.equal(missing.error.code, -32062)
    t.match(missing.error.message, /its answer has no response to this request/)

    bad.mode = 'json-batch-missing'
    const batchSession = await openSession(gw.url, '2025-03-26')
    res = await fetch(gw.url, {
      method: 'POST',
      headers: postHeaders({ 'mcp-session-id': batchSession, 'mcp-protocol-version': '2025-03-26' }),
      body: `[${call(7, 'echo', {})},${call(8, 'echo', {})}]`
    })
    const batch = await res.json() as Array<{ id: number, result?: unknown, error?: { code: number } }>
    t.same(batch.map((m) => [m.id, m.error?.code ?? 'ok']), [[7, 'ok'], [8, -32062]], `a batch gets an answer for each request${label}`)
  }
})

async function disconnectDuring (url: string, sessionId: string, version: string, id: number, ms: number, onFirstBytes?: (text: string) => void, arrived?: () => boolean): Promise<void> {
  const abort = new AbortController()
  const response = fetch(url, {
    method: 'POST',
    headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': version }),
    body: call(id, 'wait', { ms }),
    signal: abort.signal
  })
  response.catch(() => {})
  if (onFirstBytes !== undefined) {
    const reader = ((await response).body as ReadableStream<Uint8Array>).getReader()
    const { value } = await reader.read()
    onFirstBytes(new TextDecoder().decode(value))
  } else {
    // Leave once the call is upstream: earlier, there would be nothing to cancel there.
    await eventually(() => arrived?.() ?? true)
  }
  abort.abort()
}

t.test('JSON answers: a client that disconnects cancels its upstream request', async (t) => {
  const up = await upstream(t, { jsonResponse: true })
  const gw = await gateway(t, { upstream: up.url })
  const sessionId = await openSession(gw.url)
  const pending = disconnectDuring(gw.url, sessionId, '2025-11-25', 42, 20_000, undefined, () => up.record.requests.some((r) => (r.body as { id?: unknown } | undefined)?.id === 42))
  await pending
  await eventually(() => up.record.cancelled.includes(42))
  t.same(up.record.cancelled, [42], 'the upstream tool saw its request cancelled')
})

t.test('SSE answers: a client that leaves before holding any event id cancels upstream', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  // 2025-06-18 clients get no priming event, and `wait` sends nothing before its answer.
  const sessionId = await openSession(gw.url, '2025-06-18')
  await disconnectDuring(gw.url, sessionId, '2025-06-18', 43, 20_000, undefined, () => up.record.requests.some((r) => (r.body as { id?: unknown } | undefined)?.id === 43))
  await eventually(() => up.record.cancelled.includes(43))
  t.same(up.record.cancelled, [43])
})

t.test('SSE answers: a client that leaves holding an event id is not cancelled, and resumes', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const sessionId = await openSession(gw.url, '2025-11-25')
  let first = ''
  await disconnectDuring(gw.url, sessionId, '2025-11-25', 44, 600, (text) => { first = text })
  const primed = /id: (\S+)\ndata: \n/.exec(first)
  t.ok(primed, 'a priming event came first')
  const res = await fetch(gw.url, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'last-event-id': primed?.[1] ?? '' }
  })
  t.equal(res.status, 200)
  const messages = await sseMessages(res)
  t.same(messages, [{ jsonrpc: '2.0', id: 44, result: { content: [{ type: 'text', text: 'waited' }] } }], 'the answer arrives on the resumed stream')
  t.same(up.record.cancelled, [])
})

for (const mode of MODES) {
  t.test(`${mode.name}: the SDK client's own cancellation reaches the upstream`, async (t) => {
    const up = await upstream(t, { jsonResponse: mode.jsonResponse })
    const gw = await gateway(t, { upstream: up.url })
    const { client: c } = await client(t, gw.url)
    const callAbort = new AbortController()
    const result = c.callTool({ name: 'wait', arguments: { ms: 20_000 } }, CallToolResultSchema, { signal: callAbort.signal })
    setTimeout(() => callAbort.abort(), 200)
    await t.rejects(result)
    await eventually(() => up.record.cancelled.length === 1)
  })
}

t.test('an SSE answer that starts after its session was deleted: the client gets 404 -32001, and no log is left behind', async (t) => {
  const bad = await badUpstream(t, 'sse-held')
  const gw = await gateway(t, { upstream: bad.url })
  const session = await openSession(gw.url)
  const answer = fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': session }), body: call(7, 'slow', {}) })
  await eventually(() => bad.held.length === 1)
  const deleted = await fetch(gw.url, { method: 'DELETE', headers: { 'mcp-session-id': session } })
  t.equal(deleted.status, 200)
  t.same(await gw.app.mcpEvents.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'the session\'s log is gone')
  bad.held[0]?.()
  const res = await answer
  t.equal(res.status, 404, 'what a request on the deleted session gets')
  t.equal((await res.json() as RpcError).error.code, -32001)
  t.same(await gw.app.mcpEvents.stats(), { events: 0, bytes: 0, streams: 0, evicted: 0 }, 'and the late answer did not bring it back')
  const after = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': session }), body: call(8, 'slow', {}) })
  t.equal(after.status, 404, 'the session stays gone')
  await after.text()
})

t.test('dropped upstream responses are counted by reason, on every answer path', async (t) => {
  const cases = [
    { mode: 'sse-stray', streaming: undefined, expect: { stray: 1, duplicate: 1 } },
    { mode: 'sse-stray', streaming: false, expect: { stray: 1, duplicate: 1 } },
    { mode: 'json-stray', streaming: undefined, expect: { stray: 1 } },
    { mode: 'json-duplicate', streaming: undefined, expect: { duplicate: 1 } }
  ] as const
  for (const { mode, streaming, expect } of cases) {
    const bad = await badUpstream(t, mode)
    const gw = await gateway(t, { upstream: { name: 'bad', url: bad.url }, ...(streaming === false ? { streaming } : {}) })
    const sessionId = await openSession(gw.url)
    const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: call(5, 'echo', {}) })
    await res.text()
    const metrics = await (await fetch(gw.url.replace(/\/mcp$/, '/metrics'))).text()
    const count = (reason: string): number => Number(new RegExp(`mcp_gateway_upstream_responses_dropped_total\\{upstream="bad",reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
    t.same({ stray: count('stray'), duplicate: count('duplicate'), cancelled: count('cancelled') }, { stray: 0, duplicate: 0, cancelled: 0, ...expect }, `${mode}${streaming === false ? ', without the event log' : ''}`)
  }
})
