/**
 * The gateway's own listener over HTTP/2: cleartext h2c, and TLS with HTTP/1.1 still served by
 * ALPN. A JSON answer, an SSE answer with progress, and a GET stream, over one HTTP/2 connection.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { connect, type ClientHttp2Session } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createGateway } from '../../examples/gateway/create-gateway.ts'
import { upstream } from '../helpers/peers.ts'

interface Answer {
  status: number
  headers: Record<string, unknown>
  text: string
}

function request (session: ClientHttp2Session, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': '/mcp', ...headers })
    let text = ''
    let head: Record<string, unknown> = {}
    stream.setEncoding('utf8')
    stream.on('response', (h) => { head = h })
    stream.on('data', (chunk: string) => { text += chunk })
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, text }))
    stream.on('error', reject)
    stream.end(body)
  })
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'h2', version: '1' } } })

async function exchange (t: Test, session: ClientHttp2Session): Promise<void> {
  const init = await request(session, 'POST', JSON_HEADERS, INITIALIZE)
  t.equal(init.status, 200)
  const sessionId = init.headers['mcp-session-id'] as string
  t.type(sessionId, 'string')
  const headers = { ...JSON_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
  t.equal((await request(session, 'POST', headers, '{"jsonrpc":"2.0","method":"notifications/initialized"}')).status, 202)
  const countdown = await request(session, 'POST', headers, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'countdown', arguments: { from: 3, delayMs: 1 }, _meta: { progressToken: 'p' } } }))
  t.equal(countdown.headers['content-type'], 'text/event-stream')
  t.equal((countdown.text.match(/notifications\/progress/g) ?? []).length, 3, 'three progress events then the answer, over HTTP/2')
  t.match(countdown.text, /liftoff/)
  const deleted = await request(session, 'DELETE', { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' })
  t.equal(deleted.status, 200)
}

t.test('h2c', async (t) => {
  const up = await upstream(t)
  const app = await createGateway({ upstream: up.url, http2: true, logLevel: false })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const session = connect(address)
  t.teardown(() => session.close())
  await exchange(t, session)
})

t.test('HTTP/2 over TLS, HTTP/1.1 still served', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-gw-tls-'))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const up = await upstream(t)
  const app = await createGateway({ upstream: up.url, http2: true, tls: { key, cert }, logLevel: false })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const session = connect(address, { rejectUnauthorized: false })
  t.teardown(() => session.close())
  await exchange(t, session)
  const { request: h1 } = await import('node:https')
  const status = await new Promise<number>((resolve, reject) => {
    const req = h1(`${address}/mcp`, { method: 'POST', headers: JSON_HEADERS, rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end(INITIALIZE)
  })
  t.equal(status, 200, 'an HTTP/1.1 client is served on the same port')
  await t.rejects(createGateway({ upstream: up.url, tls: { key: join(dir, 'missing.pem'), cert } }), /Invalid option "tls"/)
})

t.test('HTTP/2 to an https upstream that offers it (upstream.http2), HTTP/1.1 otherwise', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-gw-tls-'))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const { createSecureServer } = await import('node:http2')
  const { readFileSync } = await import('node:fs')
  // Only the HTTP version is under test here: a minimal upstream that answers initialize.
  const versions: string[] = []
  const server = createSecureServer({ key: readFileSync(key), cert: readFileSync(cert), allowHTTP1: true }, (req, res) => {
    versions.push(req.httpVersion)
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'up-1' })
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'h2', version: '1' } } }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/mcp`
  // The test's own CA: trust it for this process only.
  const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
  t.teardown(() => { if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED; else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous })
  for (const http2 of [true, false]) {
    const app = await createGateway({ upstream: { url, http2 }, logLevel: false })
    t.teardown(() => app.close())
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    const res = await fetch(`${address}/mcp`, { method: 'POST', headers: JSON_HEADERS, body: INITIALIZE })
    t.equal(res.status, 200)
    t.equal(versions.at(-1), http2 ? '2.0' : '1.1', `upstream.http2 ${String(http2)}`)
  }
})
