/**
 * `__proto__` and `constructor.prototype` keys in a client's body are handled as the host
 * Fastify's `onProtoPoisoning` / `onConstructorPoisoning` say (default `error`): refused with
 * HTTP 400 and JSON-RPC -32600 before any interceptor sees the message; `remove` strips them (the
 * upstream never gets them either); `ignore` lets them through. WebSocket frames are refused too.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import mcpGateway from '../../plugins/index.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import { upstream } from '../helpers/peers.ts'
import { wsFrames } from '../helpers/ws-frames.ts'
import { initializeBody, openSession, postHeaders } from '../helpers/http.ts'

const PROTO = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","__proto__":{"polluted":true}}}}'
const ESCAPED = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","\\u005f_proto__":{"polluted":true}}}}'
const CONSTRUCTOR = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","constructor":{"prototype":{"polluted":true}}}}}'
const HARMLESS = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","constructor":"a name"}}}'

async function start (t: Test, fastifyOptions: FastifyServerOptions): Promise<{ url: string, seen: JsonRpcMessage[], upstreamBodies: () => unknown[] }> {
  const up = await upstream(t)
  const seen: JsonRpcMessage[] = []
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(mcpGateway, { upstream: up.url, websocket: true, interceptors: { interceptors: [{ name: 'see', match: { direction: 'client_to_upstream', method: 'tools/call' }, handler: (message) => { seen.push(message) } }] } })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const upstreamBodies = (): unknown[] => up.record.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'tools/call').map((r) => r.body)
  return { url: `${address}/mcp`, seen, upstreamBodies }
}

async function post (url: string, sessionId: string, body: string): Promise<{ status: number, json: { result?: unknown, error?: { code: number, message: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream' }), body })
  const text = await res.text()
  // An SSE answer carries one data line with the response.
  const json = text.startsWith('{') ? JSON.parse(text) : JSON.parse(/^data: (\{.*)$/m.exec(text)?.[1] ?? 'null')
  return { status: res.status, json }
}

const argumentsOf = (message: unknown): Record<string, unknown> => (message as { params: { arguments: Record<string, unknown> } }).params.arguments

t.test('default (error): refused before any interceptor', async (t) => {
  const gw = await start(t, {})
  const sessionId = await openSession(gw.url)
  for (const [label, body] of [['__proto__', PROTO], ['escaped __proto__', ESCAPED], ['constructor.prototype', CONSTRUCTOR]] as const) {
    const res = await post(gw.url, sessionId, body)
    t.equal(res.status, 400, label)
    t.same(res.json.error, { code: -32600, message: 'Invalid Request: object contains forbidden prototype property' }, label)
  }
  t.equal(gw.seen.length, 0, 'no interceptor saw them')
  t.equal(gw.upstreamBodies().length, 0, 'nor the upstream')
  const harmless = await post(gw.url, sessionId, HARMLESS)
  t.equal(harmless.status, 200, 'a key named constructor holding no prototype is fine')
  t.equal(gw.seen.length, 1)
})

t.test('remove: the keys are stripped, for interceptors and upstream alike', async (t) => {
  const gw = await start(t, { onProtoPoisoning: 'remove', onConstructorPoisoning: 'remove' })
  const sessionId = await openSession(gw.url)
  for (const body of [PROTO, CONSTRUCTOR]) {
    const res = await post(gw.url, sessionId, body)
    t.equal(res.status, 200)
    t.ok(res.json.result, 'answered')
  }
  t.equal(gw.seen.length, 2)
  for (const message of [...gw.seen, ...gw.upstreamBodies()]) {
    const args = argumentsOf(message)
    t.notOk(Object.hasOwn(args, '__proto__'), 'no __proto__ key')
    t.notOk(Object.hasOwn(args, 'constructor'), 'no constructor key')
    t.equal(args.text, 'hi', 'the rest is kept')
  }
  t.equal(gw.upstreamBodies().length, 2)
})

t.test('ignore: the host allowed them', async (t) => {
  const gw = await start(t, { onProtoPoisoning: 'ignore', onConstructorPoisoning: 'ignore' })
  const sessionId = await openSession(gw.url)
  t.equal((await post(gw.url, sessionId, PROTO)).status, 200)
  t.ok(Object.hasOwn(argumentsOf(gw.seen[0]), '__proto__'), 'passed as it came')
})

t.test('mixed: each setting applies to its own key', async (t) => {
  const gw = await start(t, { onProtoPoisoning: 'remove', onConstructorPoisoning: 'error' })
  const sessionId = await openSession(gw.url)
  t.equal((await post(gw.url, sessionId, PROTO)).status, 200)
  t.equal((await post(gw.url, sessionId, CONSTRUCTOR)).status, 400)
})

t.test('WebSocket frames follow the host\'s setting too (remove)', async (t) => {
  const gw = await start(t, { onProtoPoisoning: 'remove', onConstructorPoisoning: 'remove' })
  const { socket, next } = await wsFrames(t, gw.url)
  socket.send(initializeBody())
  t.ok((await next()).result, 'initialized')
  socket.send(PROTO)
  t.ok((await next()).result, 'answered, not refused')
  t.equal(gw.seen.length, 1)
  t.notOk(Object.hasOwn(argumentsOf(gw.seen[0]), '__proto__'), 'stripped before the interceptors')
})

t.test('WebSocket frames: refused with -32600', async (t) => {
  const gw = await start(t, {})
  const { socket, next } = await wsFrames(t, gw.url)
  socket.send(initializeBody())
  t.ok((await next()).result, 'initialized')
  socket.send(PROTO)
  t.same((await next()).error, { code: -32600, message: 'Invalid Request: object contains forbidden prototype property' })
  t.equal(gw.seen.length, 0)
})
