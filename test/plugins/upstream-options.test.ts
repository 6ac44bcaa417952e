/** Upstream options of every kind are checked at registration, each bad one named. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { gateway } from '../helpers/peers.ts'
import { refused } from '../helpers/refused.ts'

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

t.test('bad options are refused, naming the option', async (t) => {
  t.match(await refused({ upstream: { kind: 'stdio' } }), /"upstream\.command"/)
  t.match(await refused({ upstream: { kind: 'ftp', url: 'http://x' } }), /"upstream\.kind"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', args: 'y' } }), /"upstream\.args"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', env: { A: 1 } } }), /"upstream\.env\.A"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', cwd: 3 } }), /"upstream\.cwd"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', shared: 'yes' } }), /"upstream\.shared"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', maxSessions: 0 } }), /"upstream\.maxSessions"/)
  t.match(await refused({ upstream: { kind: 'sse', url: 'ftp://x' } }), /"upstream\.url"/)
  t.match(await refused({ upstream: { url: 'http://x', http2: 1 } }), /"upstream\.http2"/)
  t.match(await refused({ upstream: { url: 'http://x', pipelining: 0 } }), /"upstream\.pipelining"/)
  t.match(await refused({ upstream: 'http://x/mcp', upstreams: [{ name: 'a', url: 'http://x' }] }), /"upstreams"/)
  t.match(await refused({ upstreams: [] }), /"upstreams"/)
  t.match(await refused({ upstreams: [{ url: 'http://x' }] }), /"upstreams\[0\]\.name"/)
  t.match(await refused({ upstreams: [{ name: 'a', url: 'http://x', path: '/m' }, { name: 'b', url: 'http://y', path: '/m' }] }), /"upstreams\[1\]\.path"/)
  t.match(await refused({ upstreams: [{ name: 'a', url: 'http://x' }, { name: 'a', url: 'http://y', path: '/other' }] }), /"upstream\.name"/)
  t.match(await refused({ path: '/mcp', upstreams: [{ name: 'a', url: 'http://x' }] }), /"path"/)
  t.equal(await refused({ upstreams: [{ name: 'a', url: 'http://x' }, { name: 'b', kind: 'stdio', command: 'true' }] }), 'accepted')
})

t.test('a stdio command that cannot start: 502 at initialize, and /readyz says so', async (t) => {
  const gw = await gateway(t, { upstream: { kind: 'stdio', name: 'missing', command: '/nonexistent/mcp-server' } })
  const res = await fetch(gw.url, { method: 'POST', headers: HEADERS, body: INITIALIZE })
  t.equal(res.status, 502)
  t.equal((await res.json() as { error: { code: number } }).error.code, -32060)
  const ready = await fetch(new URL('/readyz', gw.url))
  t.equal(ready.status, 503)
  t.match(await ready.text(), /upstream:missing/)
})

t.test('a legacy upstream whose endpoint is on another origin is refused (credentials stay home)', async (t) => {
  const hostile = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: endpoint\ndata: http://attacker.example/steal\n\n')
  })
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    hostile.closeAllConnections()
    hostile.close()
  })
  const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/sse`
  const gw = await gateway(t, { upstream: { kind: 'sse', name: 'hostile', url, headers: { authorization: 'Bearer secret' } } })
  const res = await fetch(gw.url, { method: 'POST', headers: HEADERS, body: INITIALIZE })
  t.equal(res.status, 502)
  const body = await res.json() as { error: { code: number, message: string } }
  t.equal(body.error.code, -32062)
  t.match(body.error.message, /another origin/)
})

t.test('unknown option keys are refused at start, naming the key and the nearest known one', async (t) => {
  const url = 'http://127.0.0.1:9/mcp'
  t.match(await refused({ upstream: { url, requestTimout: 5000 } }), /Invalid option "upstream\.requestTimout": is not a known option \(did you mean "requestTimeout"\?\)/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', killGraceMS: 5 } }), /"upstream\.killGraceMS".*did you mean "killGraceMs"/)
  t.match(await refused({ upstream: { kind: 'stdio', command: 'x', pipelining: 2 } }), /"upstream\.pipelining": is not a known option/, 'an option of another kind')
  t.match(await refused({ upstreams: [{ name: 'a', url, hedaers: {} }] }), /"upstream\.hedaers".*did you mean "headers"/)
  t.match(await refused({ upstream: url, sessions: { idleTimoutMs: 5 } }), /"idleTimoutMs".*did you mean "idleTimeoutMs"/)
  t.match(await refused({ upstream: url, store: { type: 'memory', url: 'redis://x' } }), /"store\.url": is not a known option/)
  t.match(await refused({ upstream: url, health: { readinesPath: '/r' } }), /"health\.readinesPath".*did you mean "readinessPath"/)
  t.match(await refused({ upstream: url, interceptors: { rulez: [] } }), /"interceptors\.rulez".*did you mean "rules"/)
  t.match(await refused({ upstream: url, rateLimit: { max: 1, window: 5 } }), /"rateLimit\.window": is not a known option/)
  t.match(await refused({ upstream: url, auth: { apiKeys: { keys: [] }, scopes: [] } }), /"auth\.scopes"/)
  t.match(await refused({ upstream: url, websocket: { pingInterval: 5 } }), /"websocket\.pingInterval".*did you mean "pingIntervalMs"/)
  t.match(await refused({ upstream: url, bodyLimt: 5 }), /"bodyLimt".*did you mean "bodyLimit"/, 'a top-level key of the umbrella')
  t.match(await refused({ upstream: url, heartbeat: { interval: 5 } }), /"heartbeat\.interval": is not a known option/)
  t.match(await refused({ upstream: url, route: { onRequest: [] } }), /"route\.onRequest": is not a known option/)
  t.match(await refused({ upstream: url, streaming: { retyMs: 5 } }), /"retyMs".*did you mean "retryMs"/, 'streaming, named as its other options are')
  t.match(await refused({ upstream: url, metrics: { endpoit: '/m' } }), /"endpoit".*did you mean "endpoint"/)
  t.match(await refused({ upstream: url, tracing: { tracername: 'x' } }), /"tracername".*did you mean "tracerName"/)
  t.match(await refused({ upstream: url, interceptors: { rules: [{ block: { tool: 'x', resaon: 'y' } }] } }), /"interceptors\.rules\[0\]\.block\.resaon".*did you mean "reason"/, 'a key inside a rule')
  t.match(await refused({ upstream: url, route: { preHandler: 3 } }), /"route\.preHandler": must be a function or an array of functions/, 'route hooks at registration')
  t.equal(await refused({ upstream: { url, requestTimeout: 5000, toolTimeouts: { x: 1 }, headers: { a: 'b' } } }), 'accepted', 'every known key still passes')
  t.equal(await refused({ upstream: url, logLevel: 'warn', prefix: '/gw' }), 'accepted', 'Fastify\'s own register options pass')
})
