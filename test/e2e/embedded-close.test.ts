/**
 * A host app (a plain `Fastify()`, default pluginTimeout of 10 s) that registers the gateway and
 * closes during a call longer than any drain: close() resolves inside the host's plugin timeout,
 * the client's stream ends with a `retry:` hint, and a drain that cannot fit is refused at
 * registration with what to set.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import mcpGateway from '../../plugins/index.ts'
import { openSession } from '../helpers/http.ts'
import { fileURLToPath } from 'node:url'
import { client, eventually, textOf, upstream } from '../helpers/peers.ts'
import { once } from 'node:events'
import WebSocket from 'ws'

const STUBBORN = fileURLToPath(new URL('../helpers/stubborn-stdio-server.mjs', import.meta.url))

/** `app.close()`: its error (AVV_ERR_READY_TIMEOUT when a preClose hook ran past pluginTimeout), if any, and how long it took. */
async function timedClose (app: FastifyInstance): Promise<{ closed: (Error & { code?: string }) | undefined, took: number }> {
  const started = Date.now()
  const closed = await app.close().then(() => undefined, (err: unknown) => err as Error & { code?: string })
  return { closed, took: Date.now() - started }
}

t.test('close() during a 14 s call resolves, without AVV_ERR_READY_TIMEOUT, and ends the stream with retry:', async (t) => {
  const up = await upstream(t)
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, { upstream: up.url })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `${address}/mcp`
  const sessionId = await openSession(url)
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'wait', arguments: { ms: 14_000 } } })
  })
  t.equal(res.status, 200)
  const body = res.text()
  const { closed, took } = await timedClose(app)
  t.equal(closed?.code, undefined, `close() resolved (${closed?.message ?? 'no error'})`)
  t.ok(took < 10_000, `inside the host's 10 s pluginTimeout (${took} ms)`)
  t.match(await body, /retry: \d+\n\n$/, 'the stream ended with a retry hint, the call still running')
})

t.test('an explicit drainTimeoutMs that does not fit the host\'s pluginTimeout is refused, naming both', async (t) => {
  const refusals = [
    { options: { streaming: { drainTimeoutMs: 10_000 } }, message: /drainTimeoutMs.*pluginTimeout \(10000 ms\).*Fastify\(\{ pluginTimeout: 12000 \}\)/ },
    { options: { websocket: { drainTimeoutMs: 9000 } }, message: /websocket\.drainTimeoutMs.*pluginTimeout \(10000 ms\)/ }
  ]
  for (const { options, message } of refusals) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await t.rejects(async () => {
      await app.register(mcpGateway, { upstream: 'http://127.0.0.1:9/mcp', ...options })
      await app.ready()
    }, message)
  }
  const roomy = Fastify({ logger: false, pluginTimeout: 15_000 })
  t.teardown(() => roomy.close())
  await roomy.register(mcpGateway, { upstream: 'http://127.0.0.1:9/mcp', streaming: { drainTimeoutMs: 10_000 } }).ready()
  t.pass('accepted with a pluginTimeout that holds it')
})

t.test('with WebSocket on, close() during 14 s calls over a socket and over HTTP resolves inside the pluginTimeout', async (t) => {
  const up = await upstream(t)
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, { upstream: up.url, websocket: true })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const socket = new WebSocket(`${address.replace(/^http/, 'ws')}/mcp/ws`, ['mcp'])
  const frames: Array<{ id?: unknown }> = []
  socket.on('message', (data) => frames.push(JSON.parse(String(data))))
  const closedWith = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  await once(socket, 'open')
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }))
  await eventually(() => frames.some((frame) => frame.id === 1))
  socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'wait', arguments: { ms: 14_000 } } }))
  // And a call over Streamable HTTP: both drains (8 s each in a plain Fastify()) run together.
  const sessionId = await openSession(`${address}/mcp`)
  const post = await fetch(`${address}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'wait', arguments: { ms: 14_000 } } })
  })
  const postBody = post.text()
  await eventually(() => up.record.requests.filter((r) => JSON.stringify(r.body ?? '').includes('"wait"')).length === 2)
  const { closed, took } = await timedClose(app)
  t.equal(closed?.code, undefined, `close() resolved (${closed?.message ?? 'no error'})`)
  t.ok(took < 12_000, `the drains ran together, inside the host's 10 s pluginTimeout (${took} ms; one after the other: 16 s)`)
  t.equal(await closedWith, 1001, 'the socket closed as going away')
  t.match(await postBody, /retry: \d+\n\n$/, 'the HTTP stream ended with a retry hint')
})

t.test('a stdio child that ignores SIGTERM, with killGraceMs above the host\'s pluginTimeout: close() resolves once it is killed', async (t) => {
  const app = Fastify({ logger: false, pluginTimeout: 3000 })
  await app.register(mcpGateway, {
    upstream: { kind: 'stdio', name: 'stubborn', command: process.execPath, args: [STUBBORN, '--ignore-sigterm'], killGraceMs: 4000 },
    streaming: { drainTimeoutMs: 500 }
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client: c } = await client(t, `${address}/mcp`)
  const pid = Number(textOf(await c.callTool({ name: 'pid', arguments: {} })))
  t.teardown(() => { try { process.kill(pid, 'SIGKILL') } catch {} })
  c.onerror = () => {}
  const { closed, took } = await timedClose(app)
  t.equal(closed?.code, undefined, `close() resolved (${closed?.message ?? 'no error'})`)
  t.ok(took >= 3900 && took < 20_000, `after the child's grace, not cut at the pluginTimeout (${took} ms)`)
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone')
})

t.test('close() while the upstream has not yet sent its GET stream\'s headers: the opening reader is stopped, the close does not wait for it', async (t) => {
  t.setTimeout(30_000)
  const { createServer } = await import('node:http')
  let getClosed = false
  let getOpened = false
  const held = createServer((req, res) => {
    if (req.method === 'GET') {
      // Headers held back until a first event that never comes (as a buffering proxy might).
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      getOpened = true
      req.once('close', () => { getClosed = true })
      return
    }
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      const message = JSON.parse(body) as { id?: number, method: string }
      if (message.id === undefined) {
        res.writeHead(202).end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'held-session' })
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'held', version: '1' } } }))
    })
  })
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { held.closeAllConnections(); held.close() })
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, { upstream: { url: `http://127.0.0.1:${(held.address() as { port: number }).port}/mcp`, protocol: '2025', headersTimeout: 120_000 } })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `${address}/mcp`
  const sessionId = await openSession(url)
  const abort = new AbortController()
  const stream = fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, signal: abort.signal })
    .then(async (res) => await res.text(), (err: unknown) => `failed: ${String(err)}`)
  t.teardown(() => abort.abort())
  await eventually(() => getOpened)
  const { closed, took } = await timedClose(app)
  t.equal(closed, undefined, `close() resolved (${took} ms)`)
  await eventually(() => getClosed)
  t.ok(getClosed, 'the upstream GET was ended by the gateway')
  t.match(await stream, /retry: \d+/, 'the client\'s stream ended with a hint to come back')
})
