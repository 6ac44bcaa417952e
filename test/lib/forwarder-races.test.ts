/**
 * Races in the exchange that an end-to-end test cannot aim at: a client gone before its request is
 * sent, and concurrent `initialize`s against the session cap.
 */
import t from 'tap'
import { Readable } from 'node:stream'
import { Abort } from '../../lib/abort.ts'
import { Forwarder } from '../../lib/forwarder.ts'
import { resolveSession, type ParsedBody } from '../../lib/session/resolve.ts'
import { SessionManager } from '../../lib/session/manager.ts'
import { MemorySessionStore } from '../../lib/session/memory-store.ts'
import { checkTimeouts } from '../../lib/upstream/options.ts'
import type { Upstream, UpstreamHttpRequest, UpstreamHttpResponse, UpstreamSend, UpstreamSessionRequest } from '../../lib/upstream/types.ts'
import type { UpstreamAnswer, UpstreamEvents } from '../../lib/upstream/events.ts'
import { endOverHttp, listenOverHttp, sendOverHttp } from '../../lib/upstream/http-answer.ts'
import type { Logger } from '../../lib/logger.ts'

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }

/** An upstream that records each request's signal and answers when told. */
class RecordingUpstream implements Upstream {
  readonly name = 'recorder'
  readonly kind = 'streamable-http' as const
  readonly requests: UpstreamHttpRequest[] = []
  private readonly waiting: Array<() => void> = []
  answer: () => UpstreamHttpResponse = () => ({
    status: 200,
    headers: { 'content-type': 'application/json', 'mcp-session-id': 'up-1' },
    body: Readable.from([Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"r","version":"0"}}}')])
  })

  async send (req: UpstreamSend): Promise<UpstreamAnswer> {
    return await sendOverHttp(this, req)
  }

  async listen (req: UpstreamSessionRequest): Promise<UpstreamEvents> {
    return await listenOverHttp(this, req)
  }

  async end (req: UpstreamSessionRequest): Promise<void> {
    await endOverHttp(this, req)
  }

  async request (req: UpstreamHttpRequest): Promise<UpstreamHttpResponse> {
    this.requests.push(req)
    await new Promise<void>((resolve) => this.waiting.push(resolve))
    return this.answer()
  }

  release (): void {
    for (const resolve of this.waiting.splice(0)) resolve()
  }

  async probe (): Promise<void> {}
  async close (): Promise<void> {}
  async destroy (): Promise<void> {}
}

const callBody = (): ParsedBody => {
  const message = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } }
  return { raw: Buffer.from(JSON.stringify(message)), messages: [message], batch: false }
}

t.test('a client gone before its request is sent: nothing is sent upstream', async (t) => {
  const upstream = new RecordingUpstream()
  const sessions = new SessionManager(new MemorySessionStore())
  const forwarder = new Forwarder({ upstream, sessions, timeouts: checkTimeouts('upstream', { requestTimeout: 60_000 }) })
  const signal = new Abort()
  signal.abort()
  // stdio and legacy upstreams, unlike undici, would run a request whose signal already fired.
  await t.rejects(forwarder.post({ headers: { 'mcp-protocol-version': '2026-07-28' }, resolution: { kind: 'stateless' }, signal, log: quiet }, callBody()), { name: 'AbortError' })
  t.equal(upstream.requests.length, 0, 'the upstream never got it (nor a cancellation for it)')
})

t.test('concurrent initializes cannot pass the session cap together', async (t) => {
  const upstream = new RecordingUpstream()
  const sessions = new SessionManager(new MemorySessionStore(), Date.now, { maxSessions: 2 })
  const forwarder = new Forwarder({ upstream, sessions })
  const initialize = (): ParsedBody => {
    const message = { jsonrpc: '2.0' as const, id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '0' } } }
    return { raw: Buffer.from(JSON.stringify(message)), messages: [message], batch: false }
  }
  const attempts = Promise.allSettled(Array.from({ length: 5 }, async () => {
    const body = initialize()
    const resolution = await resolveSession(sessions, {}, body)
    return await forwarder.post({ headers: {}, resolution, signal: new Abort(), log: quiet }, body)
  }))
  // Every attempt is checked against the cap before any upstream round trip completes.
  for (let i = 0; i < 20 && upstream.requests.length < 2; i++) await new Promise((resolve) => setImmediate(resolve))
  upstream.release()
  const results = await attempts
  const opened = results.filter((r) => r.status === 'fulfilled').length
  const refused = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'MCP_GW_TOO_MANY_SESSIONS').length
  t.equal(opened, 2, 'two sessions opened')
  t.equal(refused, 3, 'the other three got TOO_MANY_SESSIONS')
  t.equal(await sessions.count(), 2, 'the cap holds')
  t.equal(upstream.requests.length, 2, 'refused initializes never reached the upstream')
})

t.test('a failed initialize gives its place back', async (t) => {
  const upstream = new RecordingUpstream()
  const sessions = new SessionManager(new MemorySessionStore(), Date.now, { maxSessions: 1 })
  const forwarder = new Forwarder({ upstream, sessions })
  upstream.answer = () => ({ status: 500, headers: {}, body: Readable.from([]) })
  const message = { jsonrpc: '2.0' as const, id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '0' } } }
  const body: ParsedBody = { raw: Buffer.from(JSON.stringify(message)), messages: [message], batch: false }
  const first = forwarder.post({ headers: {}, resolution: await resolveSession(sessions, {}, body), signal: new Abort(), log: quiet }, body)
  first.catch(() => {})
  for (let i = 0; i < 20 && upstream.requests.length < 1; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(await sessions.reserve(), undefined, 'the only place is held while the initialize is upstream')
  upstream.release()
  await t.rejects(first, { code: 'MCP_GW_UPSTREAM_ERROR' })
  t.ok(await sessions.reserve(), 'the place is free again')
})

t.test('a streamed answer whose session cannot be stored is let go: its upstream body is not held', async (t) => {
  const upstream = new RecordingUpstream()
  const store = new MemorySessionStore()
  store.create = async () => { throw new Error('store down') }
  const sessions = new SessionManager(store)
  const forwarder = new Forwarder({ upstream, sessions })
  // An SSE answer that would go on for ever: only the gateway letting go of it ends it.
  const body = new Readable({ read () {} })
  upstream.answer = () => ({ status: 200, headers: { 'content-type': 'text/event-stream', 'mcp-session-id': 'up-1' }, body })
  const message = { jsonrpc: '2.0' as const, id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '0' } } }
  const parsed: ParsedBody = { raw: Buffer.from(JSON.stringify(message)), messages: [message], batch: false }
  const post = forwarder.post({ headers: {}, resolution: await resolveSession(sessions, {}, parsed), signal: new Abort(), log: quiet }, parsed)
  post.catch(() => {})
  for (let i = 0; i < 20 && upstream.requests.length < 1; i++) await new Promise((resolve) => setImmediate(resolve))
  upstream.release()
  await t.rejects(post, /store down/)
  t.ok(body.destroyed, 'the upstream stream was destroyed, its connection freed')
})
