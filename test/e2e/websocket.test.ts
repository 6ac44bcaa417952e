/**
 * The WebSocket transport: the SDK client over the example adapter does what it does over
 * Streamable HTTP, to every upstream kind; bad frames, slow readers, dead peers and shutdown get
 * their documented close codes; Origin, subprotocol and auth are checked at the upgrade.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { CallToolResultSchema, ElicitRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { GatewayWebSocketTransport } from '../../examples/websocket-client/transport.ts'
import type { McpGatewayOptions } from '../../plugins/index.ts'
import { eventually, gateway, progressIn, recordReceived, textOf, upstream } from '../helpers/peers.ts'
import { stdioUpstream } from '../helpers/stdio.ts'
import { badUpstream } from '../helpers/bad-upstream.ts'

const wsUrl = (httpUrl: string, suffix = '/ws'): string => `${httpUrl.replace(/^http/, 'ws')}${suffix}`

/**
 * An SDK client over the example adapter, and every message its transport received, in arrival
 * order. The SDK hands progress to the caller a microtask after reading it but settles a request
 * at once, so a report that arrives in the same read as its answer (frames coalesce on a busy
 * machine) is dropped by the SDK though the gateway sent it first: what the gateway delivered,
 * and in which order, is counted here.
 */
async function wsClient (t: Test, url: string, headers?: Record<string, string>): Promise<{ client: Client, transport: GatewayWebSocketTransport, received: JSONRPCMessage[] }> {
  const transport = new GatewayWebSocketTransport(url, { headers })
  const client = new Client({ name: 'ws-test', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } })
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { ok: true } }))
  await client.connect(transport)
  const received = recordReceived(transport)
  t.teardown(() => client.close())
  return { client, transport, received }
}

/** A countdown called through `client`: the reports that reached the socket before the answer. */
async function countdown (client: Client, received: JSONRPCMessage[], from: number, delayMs: number): Promise<{ text: string, reports: number[] }> {
  const before = received.length
  const result = await client.callTool({ name: 'countdown', arguments: { from, delayMs } }, CallToolResultSchema, { onprogress: () => {} })
  const arrived = received.slice(before)
  const answer = arrived.findIndex((message) => 'result' in message)
  return { text: textOf(result), reports: progressIn(arrived.slice(0, answer)) }
}

/** A raw `ws` socket: frames in, frames out, the close code. */
async function rawSocket (url: string, protocols: string[] = ['mcp']): Promise<{ socket: WebSocket, frames: unknown[], closed: Promise<number> }> {
  const socket = new WebSocket(url, protocols)
  const frames: unknown[] = []
  socket.on('message', (data) => frames.push(JSON.parse(String(data))))
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  return { socket, frames, closed }
}

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

async function gw (t: Test, options: Partial<McpGatewayOptions>): Promise<Awaited<ReturnType<typeof gateway>>> {
  return await gateway(t, { websocket: true, ...options } as McpGatewayOptions)
}

t.test('the SDK client over WebSocket: tools, progress, elicitation, cancellation', async (t) => {
  const up = await upstream(t)
  const g = await gw(t, { upstream: up.url })
  const { client, received } = await wsClient(t, wsUrl(g.url))
  t.equal(client.getServerVersion()?.name, 'demo-upstream')
  t.ok((await client.listTools()).tools.some((tool) => tool.name === 'countdown'))
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'over ws ✓' } })), 'over ws ✓')
  const call = await countdown(client, received, 5, 5)
  t.equal(call.text, 'liftoff')
  t.same(call.reports, [1, 2, 3, 4, 5], 'every report on the socket, in order, before the answer')
  t.equal(textOf(await client.callTool({ name: 'confirm', arguments: { question: 'ok?' } })), 'confirmed', 'elicitation travels on the socket both ways')
  const abort = new AbortController()
  const cancelled = client.callTool({ name: 'wait', arguments: { ms: 5000 } }, CallToolResultSchema, { signal: abort.signal }).catch(() => 'aborted')
  // Cancel once the call is upstream, so there is something there to cancel.
  await eventually(() => up.record.requests.some((r) => (r.body as { params?: { name?: string } } | undefined)?.params?.name === 'wait'))
  abort.abort()
  t.equal(await cancelled, 'aborted')
  await eventually(() => up.record.cancelled.length === 1)
  t.pass('the cancellation reached the upstream')
  t.equal(await g.app.mcpSessions.count(), 1, 'one gateway session for the connection')
  await client.close()
  await eventually(() => up.sessionCount() === 0)
  t.pass('closing the socket ends the session, upstream too')
})

t.test('over WebSocket to a stdio upstream', async (t) => {
  const g = await gw(t, { upstream: stdioUpstream() })
  const { client, received } = await wsClient(t, wsUrl(g.url))
  const call = await countdown(client, received, 3, 1)
  t.equal(call.text, 'liftoff')
  t.same(call.reports, [1, 2, 3], 'every report on the socket, in order, before the answer')
  t.equal(textOf(await client.callTool({ name: 'confirm', arguments: { question: 'ok?' } })), 'confirmed')
})

t.test('bad frames: JSON-RPC errors, or the documented close codes', async (t) => {
  const up = await upstream(t)
  const g = await gw(t, { upstream: up.url, bodyLimit: 64 * 1024 })
  const { socket, frames, closed } = await rawSocket(wsUrl(g.url))
  socket.send('{"jsonrpc":"2.0","id":7,"method":"tools/list"}')
  socket.send('not json')
  socket.send('[{"jsonrpc":"2.0","id":8,"method":"ping"}]')
  socket.send(`{"a":${'['.repeat(100)}${']'.repeat(100)}}`)
  await eventually(() => frames.length === 4)
  t.same(frames.map((f) => (f as { id: unknown, error: { code: number } }).error.code), [-32000, -32700, -32600, -32600])
  t.equal((frames[0] as { id: unknown }).id, 7, 'an error about a request carries its id')
  socket.send(JSON.stringify(INITIALIZE))
  await eventually(() => frames.length === 5)
  t.equal((frames[4] as { result: { serverInfo: { name: string } } }).result.serverInfo.name, 'demo-upstream', 'the connection is fine after bad frames')
  socket.send(Buffer.from([1, 2, 3]), { binary: true })
  t.equal(await closed, 1003, 'a binary frame closes with 1003')

  const big = await rawSocket(wsUrl(g.url))
  big.socket.send(JSON.stringify({ ...INITIALIZE, params: { ...INITIALIZE.params, pad: 'x'.repeat(100 * 1024) } }))
  t.equal(await big.closed, 1009, 'a frame over bodyLimit closes with 1009')
})

t.test('a streamed answer cut short: the WebSocket client gets the progress, then an error, never a wait', async (t) => {
  // The upstream gave a resume point before it stopped: an SSE client could resume from it, but a
  // WebSocket has no resume, so what it left unanswered must be answered here.
  const up = await badUpstream(t, 'sse-id-end-early')
  const g = await gw(t, { upstream: up.url })
  const { socket, frames } = await rawSocket(wsUrl(g.url))
  socket.send(JSON.stringify(INITIALIZE))
  await eventually(() => frames.length === 1)
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x', arguments: {}, _meta: { progressToken: 1 } } }))
  await eventually(() => frames.length === 3)
  t.match(frames[1], { method: 'notifications/progress' }, 'the progress first, as a frame of its own')
  t.match(frames[2], { id: 2, error: { code: -32065 } }, 'then the request is answered with the stream-ended error')
  socket.close()
})

t.test('an initialize answered on a stream that stays open: the session is the connection\'s as soon as its answer is sent', async (t) => {
  const up = await badUpstream(t, 'init-sse-lingers')
  const g = await gw(t, { upstream: up.url })
  const { socket, frames } = await rawSocket(wsUrl(g.url))
  socket.send(JSON.stringify(INITIALIZE))
  await eventually(() => frames.length === 1)
  t.match(frames[0], { id: 1, result: { serverInfo: { name: 'bad' } } })
  // The upstream's stream is still open: a client may go on at once.
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }))
  await eventually(() => frames.length === 2)
  t.same(frames[1], { jsonrpc: '2.0', id: 2, result: { tools: [] } }, 'answered on the session, not refused for want of one')
  for (const release of up.held.splice(0)) release()
  socket.close()
})

t.test('the upgrade: subprotocol, Origin and auth are checked', async (t) => {
  const up = await upstream(t)
  const key = 'ws-key-0123456789abcdef'
  const g = await gw(t, { upstream: up.url, auth: { apiKeys: { keys: [{ name: 'ws', key }] } } })
  const refused = async (protocols: string[], headers: Record<string, string>): Promise<number> => await new Promise((resolve) => {
    const socket = new WebSocket(wsUrl(g.url), protocols, { headers })
    socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    socket.once('open', () => resolve(101))
    socket.once('error', () => {})
  })
  t.equal(await refused(['mcp'], {}), 401, 'no credential')
  t.equal(await refused(['other'], { authorization: `Bearer ${key}` }), 400, 'no mcp subprotocol')
  t.equal(await refused(['mcp'], { authorization: `Bearer ${key}`, origin: 'https://evil.example' }), 403, 'a foreign Origin')
  t.equal(await refused(['mcp'], { authorization: `Bearer ${key}` }), 101)
  const { client } = await wsClient(t, wsUrl(g.url), { authorization: `Bearer ${key}` })
  t.same(await client.ping(), {})
  const plain = await fetch(wsUrl(g.url).replace(/^ws/, 'http'), { headers: { authorization: `Bearer ${key}` } })
  t.equal(plain.status, 426, 'a plain GET on the WebSocket path is told to upgrade')
})

t.test('a slow reader is closed (4001) and its session ended; others are fine', async (t) => {
  const up = await upstream(t)
  // The close codes the gateway sends, as it sends them: a reader that stopped reading may never
  // see the close frame (after a grace the socket is dropped, and the client sees 1006).
  const sent: number[] = []
  const g = await gateway(t, { websocket: { highWaterMark: 256 * 1024 }, upstream: up.url } as McpGatewayOptions, (app) => {
    app.addHook('onReady', async () => {
      (app as unknown as { websocketServer: { on: (event: 'connection', fn: (socket: { close: (code?: number, reason?: string) => void }) => void) => void } }).websocketServer.on('connection', (socket) => {
        const close = socket.close.bind(socket)
        socket.close = (code, reason) => {
          if (code !== undefined) sent.push(code)
          close(code, reason)
        }
      })
    })
  })
  const { client: other } = await wsClient(t, wsUrl(g.url))
  const { client, transport } = await wsClient(t, wsUrl(g.url))
  const tcp = (transport.raw as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  tcp.pause()
  const payload = 'y'.repeat(512 * 1024)
  for (let i = 0; i < 40; i++) void client.callTool({ name: 'echo', arguments: { text: payload } }).catch(() => {})
  await eventually(() => up.sessionCount() === 1, 10_000)
  t.pass('the slow reader\'s session was ended')
  tcp.resume()
  await eventually(() => transport.closeCode !== undefined, 5000)
  t.same([...new Set(sent)], [4001], 'the gateway closed the slow reader with 4001 (slow reader), and no one else')
  t.ok(transport.closeCode === 4001 || transport.closeCode === 1006, `the client saw it closed (${String(transport.closeCode)})`)
  t.same(await other.ping(), {}, 'the other connection is unaffected')
})

t.test('a dead peer is dropped after a missed ping, and its session ended', async (t) => {
  const up = await upstream(t)
  const g = await gw(t, { upstream: up.url, websocket: { pingIntervalMs: 100 } })
  const { transport } = await wsClient(t, wsUrl(g.url))
  t.equal(await g.app.mcpSessions.count(), 1)
  // A peer that stops reading answers no ping.
  ;(transport.raw as unknown as { _socket: { pause: () => void } })._socket.pause()
  await eventually(() => up.sessionCount() === 0, 5000)
  // As for a DELETE, the upstream is told first, then the gateway forgets the session.
  let left = await g.app.mcpSessions.count()
  for (let tries = 0; left !== 0 && tries < 200; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    left = await g.app.mcpSessions.count()
  }
  t.equal(left, 0)
  transport.raw?.terminate()
})

t.test('a session ended at the gateway closes its socket with 4000', async (t) => {
  const up = await upstream(t)
  const g = await gw(t, { upstream: up.url })
  const { transport } = await wsClient(t, wsUrl(g.url))
  const [record] = await g.app.mcpSessions.store.listExpired(Date.now() + 1000, 0, 10)
  await g.app.mcpSessions.end((record as { id: string }).id, 'expired')
  await eventually(() => transport.closeCode !== undefined)
  t.equal(transport.closeCode, 4000)
  t.match(transport.closeReason, /expired/)
})

t.test('shutdown: the call in flight is answered, then 1001', async (t) => {
  const up = await upstream(t)
  const g = await gw(t, { upstream: up.url })
  const { client, transport } = await wsClient(t, wsUrl(g.url))
  const call = client.callTool({ name: 'wait', arguments: { ms: 300 } })
  await eventually(() => up.record.requests.some((r) => (r.body as { params?: { name?: string } } | undefined)?.params?.name === 'wait'))
  const closing = g.app.close()
  t.equal(textOf(await call), 'waited', 'answered before the socket closed')
  await closing
  await eventually(() => transport.closeCode !== undefined)
  t.equal(transport.closeCode, 1001)
})
