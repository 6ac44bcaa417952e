/**
 * Resumable streams through the gateway's event log: the real SDK client, cut off at random
 * points, loses and duplicates nothing; replays after gateway-side closes; the documented answers
 * for foreign, bogus and trimmed ids; slow readers; keep-alives; upstream streams that drop.
 */
import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { SseParser } from '../../lib/sse/parser.ts'
import { cutter } from '../helpers/cutter.ts'
import { readEvents } from '../helpers/sse.ts'
import { openSession, postHeaders, type RpcError } from '../helpers/http.ts'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'

function resumingClient (t: { teardown (fn: () => unknown): void }, url: string): { client: Client, transport: StreamableHTTPClientTransport } {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    reconnectionOptions: { initialReconnectionDelay: 10, maxReconnectionDelay: 50, reconnectionDelayGrowFactor: 1, maxRetries: 50 }
  })
  const client = new Client({ name: 'resuming-client', version: '1.0.0' })
  client.onerror = () => {}
  t.teardown(() => client.close())
  return { client, transport }
}

const sessionHeaders = (sessionId: string, extra: Record<string, string> = {}): Record<string, string> =>
  ({ accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', ...extra })

const countdown = (id: number, from: number, delayMs = 0): string =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'countdown', arguments: { from, delayMs }, _meta: { progressToken: `p${id}` } } })

for (const startSeed of [7, 1234, 99991]) {
  t.test(`the SDK client, cut off at random points of a 1,000-event stream, loses and duplicates nothing (seed ${startSeed})`, async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { retryMs: 5 } })
  const relay = await cutter(t, gw.url)
  const { client, transport } = resumingClient(t, relay.url)
  await client.connect(transport)

  const progress: number[] = []
  let cuts = 0
  let seed = startSeed
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const call = client.callTool({ name: 'countdown', arguments: { from: 1000, delayMs: 1 } }, CallToolResultSchema, {
    onprogress: (p) => progress.push(p.progress),
    timeout: 60_000
  })
  let finished = false
  void call.finally(() => { finished = true })
  await eventually(() => progress.length > 0, 10_000)
  while (!finished) {
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(random() * 120)))
    if (!finished && relay.cut() > 0) cuts++
  }
  const result = await call
  t.equal(textOf(result), 'liftoff')
  t.ok(cuts >= 5, `the stream was cut ${cuts} times`)
  t.equal(progress.length, 1000, 'every progress event arrived exactly once')
  t.ok(progress.every((value, index) => value === index + 1), 'in order')
})
}

t.test('a stream the gateway closes early (polling) is replayed to the SDK client in full', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { retryMs: 10, pollAfterMs: 100 } })
  const { client, transport } = resumingClient(t, gw.url)
  await client.connect(transport)
  const progress: number[] = []
  const result = await client.callTool({ name: 'countdown', arguments: { from: 30, delayMs: 15 } }, CallToolResultSchema, {
    onprogress: (p) => progress.push(p.progress)
  })
  t.equal(textOf(result), 'liftoff')
  t.same(progress, Array.from({ length: 30 }, (_, i) => i + 1))
})

t.test('Last-Event-ID answers: replay, foreign, bogus, future and trimmed ids', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { retention: { maxEventsPerStream: 5 } } })
  const a = await openSession(gw.url)
  const b = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': a, 'mcp-protocol-version': '2025-11-25' }), body: countdown(1, 20) })
  const { events } = await readEvents(res)
  t.equal(events.length, 22, 'priming, 20 progress events and the answer')
  const ids = events.map((e) => e.id as string)
  t.equal(events[0]?.data, '', 'the first event primes')
  t.match(ids[0], /^[A-Za-z0-9-]+_0$/)
  t.equal(new Set(ids).size, 22, 'ids are unique')

  const replay = await fetch(gw.url, { headers: sessionHeaders(a, { 'last-event-id': ids[18] as string }) })
  t.equal(replay.status, 200)
  const replayed = await readEvents(replay)
  t.same(replayed.events.map((e) => e.id), ids.slice(19), 'only the events after the id, in order')
  t.match(replayed.events.at(-1)?.data, /"liftoff"/)

  const rpcOf = async (r: Response): Promise<number> => ((await r.json()) as RpcError).error.code
  const foreign = await fetch(gw.url, { headers: sessionHeaders(b, { 'last-event-id': ids[5] as string }) })
  t.equal(foreign.status, 400, 'another session\'s id is unknown here')
  t.equal(await rpcOf(foreign), -32066)
  for (const bogus of ['nonsense', 'zz_1', '_3', 'g_-1', 'a b_1']) {
    const r = await fetch(gw.url, { headers: sessionHeaders(a, { 'last-event-id': bogus }) })
    t.equal(r.status, 400, bogus)
    t.equal(await rpcOf(r), -32066, bogus)
  }
  const trimmed = await fetch(gw.url, { headers: sessionHeaders(a, { 'last-event-id': ids[0] as string }) })
  t.equal(trimmed.status, 410, 'events before the retained window are gone')
  t.equal(await rpcOf(trimmed), -32067)

  // The GET stream: an id past what was ever sent is unknown.
  const get = await fetch(gw.url, { headers: sessionHeaders(b) })
  const primed = await readEvents(get, 1)
  t.match(primed.events[0]?.id, /^g_\d+$/)
  const future = await fetch(gw.url, { headers: sessionHeaders(b, { 'last-event-id': 'g_999' }) })
  t.equal(future.status, 400)
  t.equal(await rpcOf(future), -32066)
})

t.test('the GET stream keeps logging while its client is away, and replays on resume', async (t) => {
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('announce', { inputSchema: { count: z.number().int() } }, async ({ count }) => {
        for (let i = 1; i <= count; i++) await server.server.sendLoggingMessage({ level: 'info', data: `note ${i}` })
        return { content: [{ type: 'text', text: 'announced' }] }
      })
    }
  })
  const gw = await gateway(t, { upstream: up.url })
  const sessionId = await openSession(gw.url)
  const first = await fetch(gw.url, { headers: sessionHeaders(sessionId) })
  const primed = await readEvents(first, 1)
  const resumeFrom = primed.events[0]?.id as string
  // The client is gone; the upstream speaks on the GET stream meanwhile.
  await eventually(() => gw.app.mcpStreams.openWriters === 0)
  const call = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'announce', arguments: { count: 5 } } }) })
  await call.text()
  const resumed = await fetch(gw.url, { headers: sessionHeaders(sessionId, { 'last-event-id': resumeFrom }) })
  const got = await readEvents(resumed, 5)
  t.same(got.events.map((e) => JSON.parse(e.data).params.data), ['note 1', 'note 2', 'note 3', 'note 4', 'note 5'])
})

t.test('keep-alive comments on an idle stream', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { keepAliveMs: 100 } })
  const sessionId = await openSession(gw.url)
  const abort = new AbortController()
  const res = await fetch(gw.url, { headers: sessionHeaders(sessionId), signal: abort.signal })
  setTimeout(() => abort.abort(), 450)
  const comments: string[] = []
  const parser = new SseParser({ onEvent: () => {}, onComment: (c) => comments.push(c) })
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.push(chunk)
  } catch {}
  t.ok(comments.filter((c) => c === 'keep-alive').length >= 2, `saw ${comments.length} keep-alives`)
})

t.test('a reader that stops reading holds the upstream back, then is dropped; it resumes from the log', async (t) => {
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('flood', { inputSchema: { count: z.number().int(), size: z.number().int() } }, async ({ count, size }, extra) => {
        const token = extra._meta?.progressToken ?? 'flood'
        const pad = 'x'.repeat(size)
        for (let i = 1; i <= count; i++) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, message: pad } })
        }
        return { content: [{ type: 'text', text: 'flooded' }] }
      })
    }
  })
  const gw = await gateway(t, { upstream: up.url, streaming: { highWaterMark: 64 * 1024, slowReaderTimeoutMs: 200, retention: { maxBytesPerSession: 64 * 1024 * 1024 } } })
  const sessionId = await openSession(gw.url)
  const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'flood', arguments: { count: 3000, size: 4000 }, _meta: { progressToken: 'f' } } })
  const port = Number(new URL(gw.url).port)
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const headers = postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', host: `127.0.0.1:${port}`, 'content-length': String(Buffer.byteLength(body)) })
  socket.write(`POST /mcp HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`)
  const [head] = await once(socket, 'data') as [Buffer]
  const primingId = /id: (\S+)\n/.exec(head.toString())?.[1] as string
  t.ok(primingId, 'got the priming event before going silent')
  socket.pause()
  // A paused socket notices nothing; the gateway's side shows the drop.
  await eventually(() => gw.app.mcpStreams.openWriters === 0)
  t.pass('the gateway dropped the silent reader')
  socket.destroy()

  const resumed = await fetch(gw.url, { headers: sessionHeaders(sessionId, { 'last-event-id': primingId }) })
  const { events } = await readEvents(resumed)
  t.equal(events.length, 3001, 'all 3,000 notifications and the answer, from the log')
  t.match(events.at(-1)?.data, /flooded/)
})

t.test('an upstream stream that drops is resumed upstream with its own Last-Event-ID; the client sees no gap', async (t) => {
  const up = await upstream(t, { resumable: true })
  const relay = await cutter(t, up.url)
  const gw = await gateway(t, { upstream: relay.url })
  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: countdown(3, 40, 10) })
  let received = 0
  const reading = readEvents(res, Infinity, (e) => { if (e.data.includes('notifications/progress')) received++ })
  await eventually(() => received >= 5)
  t.ok(relay.cut() > 0, 'cut the gateway\'s upstream connections mid-stream')
  const { events } = await reading
  const progress = events.filter((e) => e.data.includes('notifications/progress')).map((e) => JSON.parse(e.data).params.progress)
  t.same(progress, Array.from({ length: 40 }, (_, i) => i + 1), 'every notification once, in order')
  t.match(events.at(-1)?.data, /liftoff/)
  t.ok(relay.opened() > 1, 'the gateway reconnected upstream')
  const resumedUpstream = up.record.requests.filter((r) => r.method === 'GET' && typeof r.headers['last-event-id'] === 'string')
  t.equal(resumedUpstream.length, 1, 'with a GET carrying the upstream\'s own Last-Event-ID')
})

t.test('an upstream GET stream that drops is re-opened; later notifications still reach the client', async (t) => {
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('announce', { inputSchema: { text: z.string() } }, async ({ text }) => {
        await server.server.sendLoggingMessage({ level: 'info', data: text })
        return { content: [{ type: 'text', text: 'announced' }] }
      })
    }
  })
  const relay = await cutter(t, up.url)
  const gw = await gateway(t, { upstream: relay.url })
  const sessionId = await openSession(gw.url)
  const abort = new AbortController()
  const get = await fetch(gw.url, { headers: sessionHeaders(sessionId), signal: abort.signal })
  const reader = (get.body as ReadableStream<Uint8Array>).getReader()
  const seen: string[] = []
  const parser = new SseParser({ onEvent: (e) => { if (e.data !== '') seen.push(JSON.parse(e.data).params.data) } })
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      parser.push(value as Uint8Array)
    }
  })()
  const announce = async (text: string): Promise<void> => {
    const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', id: text, method: 'tools/call', params: { name: 'announce', arguments: { text } } }) })
    await res.text()
  }
  await eventually(() => up.record.requests.filter((r) => r.method === 'GET').length === 1)
  await announce('before')
  await eventually(() => seen.includes('before'))
  relay.cut()
  await eventually(() => up.record.requests.filter((r) => r.method === 'GET').length === 2, 5000)
  await announce('after')
  await eventually(() => seen.includes('after'))
  t.same(seen, ['before', 'after'], 'the client stream never noticed')
  abort.abort()
  await pump
})
