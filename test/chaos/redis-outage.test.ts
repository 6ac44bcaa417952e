/**
 * Redis failures: lost while running (503 with a JSON-RPC error, the process stays up, service
 * comes back by itself), unreachable at start (refuse to start, or fall back to memory when told),
 * and an application's own `@fastify/redis` client reused. The outage test runs its own
 * `redis-server` on a free port, so the shared one is untouched.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import mcpGateway from '../../plugins/index.ts'
import { startCli } from '../helpers/cli.ts'
import { openSession, postHeaders, type RpcError } from '../helpers/http.ts'
import { eventually, upstream } from '../helpers/peers.ts'
import { readEvents } from '../helpers/sse.ts'
import { cutter } from '../helpers/cutter.ts'
import { z } from 'zod'
import { REDIS_URL, redisClient, skipWithoutRedis } from '../helpers/redis.ts'
import { freePort } from '../helpers/ports.ts'

const skip = await skipWithoutRedis()

/** A private redis-server that keeps its data across restarts (append-only file in `dir`). */
async function startRedis (port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: string) => {
      output += chunk
      if (output.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
  })
  return child
}

async function call (url: string, sessionId: string, id: number): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream' }),
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: `call ${id}` } } }),
    signal: AbortSignal.timeout(10_000)
  })
}

t.test('Redis restarted under traffic: 503s while it is away, the same session works after, no crash', { skip }, async (t) => {
  const port = await freePort()
  const dir = t.testdir({})
  let redis = await startRedis(port, dir)
  t.teardown(() => { redis.kill('SIGKILL') })
  const up = await upstream(t)
  const file = `${dir}/gateway.json`
  await writeFile(file, JSON.stringify({ upstream: up.url, logLevel: 'info', store: { type: 'redis', url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 } }))
  const gw = await startCli(['--config', file, '--port', '0'])
  t.teardown(() => { gw.child.kill('SIGKILL') })
  const sessionId = await openSession(gw.endpoint)

  // Traffic all along: every answer is a 200 or a 503 with a JSON-RPC error, never a hang or a 500.
  const statuses = new Map<number | string, number>()
  let running = true
  t.teardown(() => { running = false })
  let id = 100
  const traffic = (async () => {
    while (running) {
      let status: number | string
      try {
        const res = await call(gw.endpoint, sessionId, id++)
        await res.text()
        status = res.status
      } catch (err) {
        status = (err as Error).name
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()

  await eventually(() => (statuses.get(200) ?? 0) >= 3)
  redis.kill('SIGTERM')
  await once(redis, 'exit')
  // Records read in the last second are still trusted (the session store's cache): past that,
  // every request for the session needs Redis.
  await new Promise((resolve) => setTimeout(resolve, 1200))

  const res = await call(gw.endpoint, sessionId, 1)
  t.equal(res.status, 503, 'a request needing Redis gets 503')
  t.ok(Number(res.headers.get('retry-after')) > 0, 'with Retry-After')
  const body = await res.json() as RpcError
  t.equal(body.id, 1, 'the error answers the request id')
  t.equal(body.error.code, -32054)
  t.match(body.error.message, /session store cannot be reached/)
  const init = await fetch(gw.endpoint, { method: 'POST', headers: postHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) })
  t.equal(init.status, 503, 'no new session either')
  await init.text()
  const ready = await fetch(new URL('/readyz', gw.endpoint))
  t.equal(ready.status, 503, 'not ready while Redis is away')
  await ready.text()
  await eventually(() => (statuses.get(503) ?? 0) >= 3, 15_000)

  redis = await startRedis(port, dir)
  const before = statuses.get(200) ?? 0
  await eventually(() => (statuses.get(200) ?? 0) >= before + 3, 15_000)
  running = false
  await traffic
  const after = await call(gw.endpoint, sessionId, 2)
  t.equal(after.status, 200, 'the same session serves calls again')
  t.match(await after.text(), /call 2/)
  const readyAgain = await fetch(new URL('/readyz', gw.endpoint))
  t.equal(readyAgain.status, 200)
  await readyAgain.text()
  t.same([...statuses.keys()].sort(), [200, 503], `only 200s and 503s (${JSON.stringify([...statuses])})`)
  t.equal(gw.child.exitCode, null, 'the gateway process stayed up')
  t.match(gw.output(), /lost the connection to Redis/)
  t.match(gw.output(), /reconnected to Redis/)
  t.notMatch(gw.output(), /unhandled|uncaught/i)
  gw.child.kill('SIGTERM')
  const [code] = await once(gw.child, 'exit')
  t.equal(code, 0)
})

t.test('two instances, a client following on B a stream A feeds: Redis stopped and restarted, no crash, 503s, recovery', { skip }, async (t) => {
  const port = await freePort()
  const dir = t.testdir({})
  let redis = await startRedis(port, dir)
  t.teardown(() => { redis.kill('SIGKILL') })
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('announce', { inputSchema: { text: z.string() } }, async ({ text }) => {
        await server.server.sendLoggingMessage({ level: 'info', data: text })
        return { content: [{ type: 'text', text: 'announced' }] }
      })
    }
  })
  const file = `${dir}/gateway.json`
  await writeFile(file, JSON.stringify({ upstream: up.url, logLevel: 'info', store: { type: 'redis', url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 } }))
  const [a, b] = await Promise.all([startCli(['--config', file, '--port', '0']), startCli(['--config', file, '--port', '0'])])
  t.teardown(() => { a.child.kill('SIGKILL'); b.child.kill('SIGKILL') })
  const sessionId = await openSession(a.endpoint)
  const getHeaders = { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
  // A feeds the session's GET stream (it opened it first); B serves a client of it from the log.
  const fed = await fetch(a.endpoint, { headers: getHeaders })
  t.equal(fed.status, 200)
  await eventually(() => up.record.requests.some((r) => r.method === 'GET'))
  const heard: string[] = []
  const followed = await fetch(b.endpoint, { headers: getHeaders })
  t.equal(followed.status, 200, 'B follows the stream A feeds')
  const following = readEvents(followed, Infinity, (e) => { if (e.data !== '') heard.push(String(JSON.parse(e.data).params?.data)) }).catch(() => undefined)
  void readEvents(fed).catch(() => undefined)

  const statuses = new Map<number | string, number>()
  let running = true
  t.teardown(() => { running = false })
  const announce = async (n: number): Promise<number | string> => {
    try {
      const res = await fetch(a.endpoint, {
        method: 'POST',
        headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }),
        body: JSON.stringify({ jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: 'announce', arguments: { text: `n${n}` } } }),
        signal: AbortSignal.timeout(10_000)
      })
      await res.text()
      return res.status
    } catch (err) {
      return (err as Error).name
    }
  }
  const traffic = (async () => {
    for (let n = 0; running; n++) {
      const status = await announce(n)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  await eventually(() => heard.length >= 5, 10_000)
  t.pass('B\'s client hears what A logs')

  redis.kill('SIGKILL')
  await once(redis, 'exit')
  await eventually(() => (statuses.get(503) ?? 0) >= 3, 15_000)
  t.pass('requests needing Redis get 503 while it is away')
  redis = await startRedis(port, dir)
  const before = statuses.get(200) ?? 0
  await eventually(() => (statuses.get(200) ?? 0) >= before + 3, 20_000)
  t.pass('calls succeed again once Redis is back')
  running = false
  await traffic
  t.same([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], `only 200s and 503s (${JSON.stringify([...statuses])})`)
  t.equal(a.child.exitCode, null, 'A stayed up')
  t.equal(b.child.exitCode, null, 'B, the follower, stayed up')
  for (const gw of [a, b]) t.notMatch(gw.output(), /unhandled|uncaught/i, 'no unhandled rejection')
  // The follower's client can resume on B from where it got to.
  const after = await fetch(b.endpoint, { headers: getHeaders })
  t.equal(after.status, 200, 'B serves the stream again')
  await after.body?.cancel()
  for (const gw of [a, b]) {
    gw.child.kill('SIGTERM')
    const [code] = await once(gw.child, 'exit')
    t.equal(code, 0, 'and exits 0 on SIGTERM')
  }
  await following
})

t.test('a follower whose Redis commands stall while notifications still arrive: its catch-up fails without a crash, its client resumes', { skip }, async (t) => {
  const port = await freePort()
  const dir = t.testdir({})
  const redis = await startRedis(port, dir)
  t.teardown(() => { redis.kill('SIGKILL') })
  // B reaches Redis through a relay that can silence one connection: its command connection goes
  // quiet (commands time out) while its pub/sub connection still brings A's notifications.
  const relay = await cutter(t, `redis://127.0.0.1:${port}`)
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('announce', { inputSchema: { text: z.string() } }, async ({ text }) => {
        await server.server.sendLoggingMessage({ level: 'info', data: text })
        return { content: [{ type: 'text', text: 'announced' }] }
      })
    }
  })
  const config = async (name: string, url: string): Promise<string> => {
    const file = `${dir}/${name}.json`
    await writeFile(file, JSON.stringify({ upstream: up.url, logLevel: 'info', store: { type: 'redis', url, commandTimeoutMs: 300 } }))
    return file
  }
  const a = await startCli(['--config', await config('a', `redis://127.0.0.1:${port}`), '--port', '0'])
  t.teardown(() => { a.child.kill('SIGKILL') })
  const b = await startCli(['--config', await config('b', relay.url), '--port', '0'])
  t.teardown(() => { b.child.kill('SIGKILL') })
  const sessionId = await openSession(a.endpoint)
  const getHeaders = { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
  const fed = await fetch(a.endpoint, { headers: getHeaders })
  void readEvents(fed).catch(() => undefined)
  await eventually(() => up.record.requests.some((r) => r.method === 'GET'))
  const heard: string[] = []
  let lastId: string | undefined
  const followed = await fetch(b.endpoint, { headers: getHeaders })
  t.equal(followed.status, 200, 'B follows the stream A feeds')
  const following = readEvents(followed, Infinity, (e) => {
    if (e.id !== undefined && e.id !== '') lastId = e.id
    if (e.data !== '') heard.push(String(JSON.parse(e.data).params?.data))
  }).catch(() => undefined)
  const announce = async (text: string): Promise<void> => {
    const res = await fetch(a.endpoint, {
      method: 'POST',
      headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }),
      body: JSON.stringify({ jsonrpc: '2.0', id: text, method: 'tools/call', params: { name: 'announce', arguments: { text } } })
    })
    await res.text()
  }
  await announce('one')
  await eventually(() => heard.includes('one'))

  // B's first connection is its command client (the subscribers come after it).
  const release = relay.hold(0)
  await announce('two')
  await announce('three')
  await following
  t.pass('B ended its client\'s stream when it could not read the log')
  const alive = await fetch(new URL('/healthz', b.endpoint)).then((res) => res.status, (err: unknown) => (err as Error).message)
  t.equal(alive, 200, 'B is still up: no unhandled rejection took it down')
  t.equal(b.child.exitCode, null)
  release()
  // Its client resumes on B from its last event id and gets what it missed.
  let resumed: Response | undefined
  const stop = new AbortController()
  for (let i = 0; i < 50 && resumed?.status !== 200; i++) {
    await resumed?.text()
    resumed = await fetch(b.endpoint, { headers: { ...getHeaders, 'last-event-id': lastId as string }, signal: stop.signal })
    if (resumed.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(resumed?.status, 200, 'B serves the stream again once Redis answers')
  const missed: string[] = []
  const rest = readEvents(resumed as Response, Infinity, (e) => { if (e.data !== '') missed.push(String(JSON.parse(e.data).params?.data)) }).catch(() => undefined)
  await eventually(() => missed.includes('three'), 10_000)
  t.same(missed.slice(0, 2), ['two', 'three'], 'what it missed, in order')
  t.notMatch(b.output(), /unhandled|uncaught/i)
  stop.abort()
  await rest
})

t.test('Redis unreachable at start: the gateway refuses to start, or falls back to memory when told', async (t) => {
  const up = await upstream(t)
  const dir = t.testdir({})
  const port = await freePort()
  const refuse = `${dir}/refuse.json`
  await writeFile(refuse, JSON.stringify({ upstream: up.url, store: { type: 'redis', url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500 } }))
  await t.rejects(startCli(['--config', refuse, '--port', '0']), /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/)

  const fallback = `${dir}/fallback.json`
  await writeFile(fallback, JSON.stringify({ upstream: up.url, logLevel: 'warn', store: { type: 'redis', url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500, fallback: 'memory' } }))
  const gw = await startCli(['--config', fallback, '--port', '0'])
  t.teardown(() => { gw.child.kill('SIGKILL') })
  t.match(gw.output(), /REDIS UNREACHABLE: running on in-memory stores/)
  const sessionId = await openSession(gw.endpoint)
  const res = await call(gw.endpoint, sessionId, 3)
  t.equal(res.status, 200, 'serves on memory stores')
  await res.text()
})

t.test('an application\'s own @fastify/redis client is used, and left to the application to close', { skip }, async (t) => {
  const { client: redis, prefix } = await redisClient(t)
  const up = await upstream(t)
  const app = Fastify()
  await app.register(fastifyRedis, { client: redis })
  await app.register(mcpGateway, { upstream: up.url, store: { type: 'redis', keyPrefix: prefix } })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const sessionId = await openSession(`${address}/mcp`)
  t.equal(app.mcpStores.type, 'redis')
  t.ok(await redis.exists(`${prefix}s:${sessionId}`), 'the session is in the application\'s Redis')
  const res = await call(`${address}/mcp`, sessionId, 4)
  t.match(await res.text(), /call 4/)
  await app.close()
  t.equal(redis.status, 'ready', 'the application\'s client is still open')
})

t.test('bad store options are refused at registration', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ type: 'disk' }, /"store"/],
    [{ type: 'redis' }, /"store.url"/],
    [{ type: 'redis', url: 'http://x' }, /"store.url"/],
    [{ type: 'redis', url: REDIS_URL, fallback: 'maybe' }, /"store.fallback"/],
    [{ type: 'redis', url: REDIS_URL, client: {} }, /"store.client"/],
    [{ type: 'redis', url: REDIS_URL, keyPrefix: '' }, /"store.keyPrefix"/]
  ]
  for (const [store, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(mcpGateway, { upstream: 'http://127.0.0.1:9/mcp', store: store as never })
      await app.ready()
    }, message, JSON.stringify(store))
    await app.close()
  }
})
