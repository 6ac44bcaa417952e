/**
 * Hostile input never hurts anyone else: each defence answers with the right status and a
 * JSON-RPC error (or cuts the connection, where HTTP itself is abused), and an honest session on
 * the same gateway keeps working throughout.
 */
import { connect } from 'node:net'
import t from 'tap'
import { createGateway } from '../../examples/gateway/create-gateway.ts'
import { badUpstream } from '../helpers/bad-upstream.ts'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })

async function post (url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number, body: { error?: { code: number, message: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body })
  const json = res.headers.get('content-type')?.startsWith('application/json') === true
  return { status: res.status, body: json ? await res.json() as { error?: { code: number, message: string } } : (await res.text(), {}) }
}

/** Sends raw bytes on a socket; resolves with what came back and whether the server closed it. */
function raw (url: string, bytes: string | Buffer, waitMs: number): Promise<{ text: string, closed: boolean }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    let text = ''
    let closed = false
    socket.on('data', (chunk) => { text += chunk.toString('latin1') })
    socket.on('close', () => { closed = true })
    socket.on('error', () => {})
    socket.write(bytes)
    setTimeout(() => {
      socket.destroy()
      resolve({ text, closed })
    }, waitMs)
  })
}

t.test('bodies and headers that try to hurt', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const honest = (await client(t, gw.url)).client
  const { sessionId } = (await client(t, gw.url)).transport

  const deep = (n: number): string => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x","deep":${'['.repeat(n)}${']'.repeat(n)}}}}`
  const tooDeep = await post(gw.url, deep(100_000), { 'mcp-session-id': sessionId as string, 'mcp-protocol-version': '2025-11-25' })
  t.equal(tooDeep.status, 400)
  t.equal(tooDeep.body.error?.code, -32600)
  t.match(tooDeep.body.error?.message, /nested deeper than 64/)
  t.equal((await post(gw.url, deep(50), { 'mcp-session-id': sessionId as string, 'mcp-protocol-version': '2025-11-25' })).status, 200, '50 levels are fine')
  // 2,000 brackets inside a string, in a message nested 4 deep: accepted, and echoed back intact.
  const bracketed = '{['.repeat(1000)
  const inString = await fetch(gw.url, {
    method: 'POST',
    headers: { ...JSON_HEADERS, 'mcp-session-id': sessionId as string, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: bracketed } } })
  })
  t.equal(inString.status, 200, 'brackets inside strings do not count')
  t.ok((await inString.text()).includes(JSON.stringify(bracketed)), 'the call went through, echoed intact')

  const hugeId = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 'x'.repeat(2000), method: 'initialize', params: {} }))
  t.equal(hugeId.status, 400)
  t.equal(hugeId.body.error?.code, -32600)

  const badUtf8 = await post(gw.url, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))
  t.equal(badUtf8.status, 400)
  t.equal(badUtf8.body.error?.code, -32700)

  const long = await post(gw.url, '{"jsonrpc":"2.0","id":2,"method":"ping"}', { 'mcp-session-id': 'a'.repeat(5000) })
  t.equal(long.status, 404)
  // Bytes a fetch would refuse to send: straight onto a socket.
  const odd = await raw(gw.url, `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: s\xe9ssion\u0001\r\nContent-Length: 2\r\n\r\n{}`, 300)
  t.match(odd.text, /^HTTP\/1\.1 (400|404)/, 'control characters in a session id: refused')
  const latin = await raw(gw.url, `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: s\xe9ssion-${'a'.repeat(25)}\r\nContent-Length: 40\r\n\r\n{"jsonrpc":"2.0","id":2,"method":"ping"}`, 300)
  t.match(latin.text, /^HTTP\/1\.1 404/, 'a non-ASCII session id: 404, never looked up')
  t.match(latin.text, /"code":-32001/)
  const injected = await raw(gw.url, 'GET /mcp HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nMcp-Session-Id: x\rX-Injected: 1\r\n\r\n', 300)
  t.match(injected.text, /^HTTP\/1\.1 400/, 'a bare CR inside a header: refused by the parser')

  const hugeHeader = await raw(gw.url, `GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 300)
  t.match(hugeHeader.text, /^HTTP\/1\.1 431/, 'headers past 16 KiB: 431')

  const resumed = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId as string, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'g_1\u00e9\u00e9' } })
  t.equal(resumed.status, 400)
  t.equal((await resumed.json() as { error: { code: number } }).error.code, -32066)
  t.notOk(up.record.requests.some((r) => r.headers['last-event-id'] !== undefined), 'no client Last-Event-ID reaches the upstream')

  t.equal(textOf(await honest.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here', 'the honest session kept working')
})

t.test('slow-loris: a client trickling its headers is cut off; others are served meanwhile', async (t) => {
  const up = await upstream(t)
  const app = await createGateway({ upstream: up.url, logLevel: false, headersTimeoutMs: 500, requestTimeoutMs: 1000 })
  t.teardown(() => app.close())
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/mcp`
  const slow = raw(url, 'POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: appl', 3000)
  const slowBody = raw(url, 'POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc"', 3000)
  const { client: honest } = await client(t, url)
  t.same(await honest.ping(), {}, 'served while two slow clients hold sockets')
  const [headers, body] = await Promise.all([slow, slowBody])
  t.ok(headers.closed, 'the header trickler was cut off')
  t.match(headers.text, /^HTTP\/1\.1 408/)
  t.ok(body.closed, 'the body trickler was cut off')
  t.same(await honest.ping(), {})
})

t.test('an upstream that misbehaves hurts only its own exchange', async (t) => {
  const up = await upstream(t)
  const good = await gateway(t, { upstream: up.url })
  const { client: honest } = await client(t, good.url)

  const odd = await badUpstream(t, 'odd-session-id')
  const gwOdd = await gateway(t, { upstream: odd.url })
  const refused = await post(gwOdd.url, INITIALIZE)
  t.equal(refused.status, 502)
  t.match(refused.body.error?.message, /not visible ASCII/)

  const long = await badUpstream(t, 'sse-long-line')
  const gwLong = await gateway(t, { upstream: long.url })
  const init = await fetch(gwLong.url, { method: 'POST', headers: JSON_HEADERS, body: INITIALIZE })
  const headers = { 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-11-25' }
  await init.text()
  const res = await fetch(gwLong.url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}' })
  const text = await res.text()
  t.match(text, /"id":7,"error":\{"code":-3206\d/, 'a line past 16 MiB ends the stream with a JSON-RPC error for the request')
  t.ok(text.length < 64 * 1024, 'and the gateway never relayed or held the line')
  t.same(await honest.ping(), {}, 'other sessions unaffected')
})
