/**
 * The channel upstream over an in-memory channel: what a client's messages get back (as
 * messages: no HTTP in between), how messages are routed, what its GET stream gives, and how a
 * channel that goes away ends its session.
 */
import t, { type Test } from 'tap'
import { ChannelUpstream } from '../../lib/upstream/channel-upstream.ts'
import { LineSplitter, type MessageChannel } from '../../lib/upstream/channel.ts'
import { GatewayErrors } from '../../lib/errors.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import type { UpstreamAnswer } from '../../lib/upstream/events.ts'

const silent = { debug () {}, info () {}, warn () {}, error () {} }

class MemoryChannel implements MessageChannel {
  onmessage: (message: JsonRpcMessage) => void = () => {}
  onclose: (reason: Error) => void = () => {}
  sent: JsonRpcMessage[] = []
  closed = false
  send (message: JsonRpcMessage): void {
    if (this.closed) throw new Error('closed')
    this.sent.push(message)
  }

  async close (): Promise<void> {
    this.closed = true
  }

  kill (): void {
    this.closed = true
  }
}

function setup (options: { shared?: boolean, maxQueued?: number, idleMs?: number } = {}): { upstream: ChannelUpstream, channels: MemoryChannel[] } {
  const channels: MemoryChannel[] = []
  const upstream = new ChannelUpstream({
    name: 'mem',
    kind: 'stdio',
    shared: options.shared,
    maxQueued: options.maxQueued,
    idleMs: options.idleMs,
    log: silent,
    probe: async () => {},
    open: async () => {
      const channel = new MemoryChannel()
      channels.push(channel)
      return channel
    }
  })
  return { upstream, channels }
}

const INIT = { jsonrpc: '2.0' as const, id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }

/** An answer as a test sees it: its kind, the session it opened, and all its messages, read to the end. */
interface Seen {
  kind: UpstreamAnswer['kind']
  sessionId: string | undefined
  messages: JsonRpcMessage[]
}

async function seen (answer: UpstreamAnswer): Promise<Seen> {
  if (answer.kind === 'accepted') return { kind: answer.kind, sessionId: answer.sessionId, messages: [] }
  if (answer.kind === 'single') return { kind: answer.kind, sessionId: answer.sessionId, messages: answer.messages }
  const messages: JsonRpcMessage[] = []
  await new Promise<void>((resolve) => {
    answer.events.read((event) => { messages.push(...(event.parsed?.messages ?? [JSON.parse(event.data) as JsonRpcMessage])) }, () => resolve())
  })
  return { kind: answer.kind, sessionId: answer.sessionId, messages }
}

function post (upstream: ChannelUpstream, headers: Record<string, string>, messages: JsonRpcMessage[], signal?: AbortSignal): Promise<Seen> {
  return upstream.send({ headers, body: JSON.stringify(messages.length === 1 ? messages[0] : messages), messages, signal, maxBytes: 1 << 20 }).then(seen)
}

async function initialize (t: Test, upstream: ChannelUpstream, channels: MemoryChannel[]): Promise<string> {
  const pending = post(upstream, {}, [INIT])
  await new Promise((resolve) => setImmediate(resolve))
  const channel = channels.at(-1) as MemoryChannel
  channel.onmessage({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 's', version: '1' } } })
  const res = await pending
  t.equal(res.kind, 'single')
  return res.sessionId as string
}

t.test('JSON when the first message completes the answer, SSE otherwise', async (t) => {
  const { upstream, channels } = setup()
  const id = await initialize(t, upstream, channels)
  const channel = channels[0] as MemoryChannel
  const headers = { 'mcp-session-id': id }
  const quick = post(upstream, headers, [{ jsonrpc: '2.0', id: 2, method: 'ping' }])
  await new Promise((resolve) => setImmediate(resolve))
  channel.onmessage({ jsonrpc: '2.0', id: 2, result: {} })
  const answered = await quick
  t.equal(answered.kind, 'single', 'a lone response is the whole answer')
  t.same(answered.messages, [{ jsonrpc: '2.0', id: 2, result: {} }])

  const slow = post(upstream, headers, [{ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 'p' } } }])
  await new Promise((resolve) => setImmediate(resolve))
  channel.onmessage({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } })
  channel.onmessage({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } })
  channel.onmessage({ jsonrpc: '2.0', id: 3, result: { content: [] } })
  channel.onmessage({ jsonrpc: '2.0', id: 99, result: {} })
  const streamed = await slow
  t.equal(streamed.kind, 'stream')
  t.equal(streamed.messages.length, 3, 'progress, the log line and the answer; a stray response is dropped')

  const note = await post(upstream, headers, [{ jsonrpc: '2.0', method: 'notifications/initialized' }])
  t.equal(note.kind, 'accepted')
  t.same(channel.sent.map((m) => 'method' in m ? m.method : 'response'), ['initialize', 'ping', 'tools/call', 'notifications/initialized'])
})

t.test('the session\'s own stream: one per session, queued messages first; unknown sessions refused', async (t) => {
  const { upstream, channels } = setup({ maxQueued: 2 })
  const id = await initialize(t, upstream, channels)
  const channel = channels[0] as MemoryChannel
  for (const n of [1, 2, 3]) channel.onmessage({ jsonrpc: '2.0', method: 'notifications/message', params: { n } })
  const get = seen({ kind: 'stream', sessionId: undefined, events: await upstream.listen({ headers: { 'mcp-session-id': id } }) })
  await t.rejects(upstream.listen({ headers: { 'mcp-session-id': id } }), { code: 'MCP_GW_STREAM_CONFLICT', statusCode: 409 })
  channel.onmessage({ jsonrpc: '2.0', method: 'notifications/message', params: { n: 4 } })
  await t.rejects(upstream.listen({ headers: { 'mcp-session-id': 'nope' } }), { code: 'MCP_GW_UPSTREAM_SESSION_GONE' })
  await t.rejects(upstream.listen({ headers: {} }), { code: 'MCP_GW_UPSTREAM_NEEDS_SESSION' })
  await t.rejects(post(upstream, { 'mcp-session-id': 'nope' }, [{ jsonrpc: '2.0', id: 1, method: 'ping' }]), { code: 'MCP_GW_UPSTREAM_SESSION_GONE' })
  // The channel goes away: the GET stream ends, and what it held was the newest two queued and the live one.
  channel.onclose(new GatewayErrors.UPSTREAM_EXITED('mem', 'gone'))
  const events = (await get).messages.map((m) => (m as unknown as { params: { n: number } }).params.n)
  t.same(events, [2, 3, 4], 'the oldest queued message was dropped past maxQueued')
  await t.rejects(upstream.end({ headers: { 'mcp-session-id': id } }), { code: 'MCP_GW_UPSTREAM_SESSION_GONE' })
})

t.test('the session\'s own stream stops when its signal aborts: the session can open it again', async (t) => {
  const { upstream, channels } = setup()
  t.teardown(() => upstream.close())
  const id = await initialize(t, upstream, channels)
  const abort = new AbortController()
  const first = await upstream.listen({ headers: { 'mcp-session-id': id }, signal: abort.signal })
  const ended = new Promise<Error | undefined>((resolve) => first.read(() => {}, resolve))
  abort.abort()
  t.match(await ended, { message: 'upstream stream closed' }, 'the reader hears the stream stopped')
  const again = await upstream.listen({ headers: { 'mcp-session-id': id } })
  const seenAgain = seen({ kind: 'stream', sessionId: undefined, events: again })
  ;(channels[0] as MemoryChannel).onmessage({ jsonrpc: '2.0', method: 'notifications/message', params: { n: 1 } })
  ;(channels[0] as MemoryChannel).onclose(new GatewayErrors.UPSTREAM_EXITED('mem', 'gone'))
  t.equal((await seenAgain).messages.length, 1, 'a new stream gets what comes next')
})

t.test('a stream asked for with a signal already aborted is not opened: the outlet stays free', async (t) => {
  const { upstream, channels } = setup()
  t.teardown(() => upstream.close())
  const id = await initialize(t, upstream, channels)
  const abort = new AbortController()
  abort.abort()
  await t.rejects(upstream.listen({ headers: { 'mcp-session-id': id }, signal: abort.signal }), { name: 'AbortError' })
  const open = await upstream.listen({ headers: { 'mcp-session-id': id } })
  t.ok(open, 'not refused as a second stream')
  open.destroy()
})

t.test('a pending request when the channel goes: a JSON-RPC error with the reason', async (t) => {
  const { upstream, channels } = setup()
  const id = await initialize(t, upstream, channels)
  const pending = post(upstream, { 'mcp-session-id': id }, [{ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x' } }])
  await new Promise((resolve) => setImmediate(resolve))
  ;(channels[0] as MemoryChannel).onclose(new GatewayErrors.UPSTREAM_EXITED('mem', 'its process exited with code 9'))
  const body = (await pending).messages[0] as unknown as { id: number, error: { code: number, message: string } }
  t.equal(body.id, 7)
  t.equal(body.error.code, -32068)
  t.match(body.error.message, /exited with code 9/)
  t.equal(upstream.size, 0)
})

t.test('an aborted request is forgotten: its late answer goes nowhere', async (t) => {
  const { upstream, channels } = setup()
  const id = await initialize(t, upstream, channels)
  const abort = new AbortController()
  const pending = post(upstream, { 'mcp-session-id': id }, [{ jsonrpc: '2.0', id: 5, method: 'ping' }], abort.signal)
  abort.abort()
  await t.rejects(pending)
  ;(channels[0] as MemoryChannel).onmessage({ jsonrpc: '2.0', id: 5, result: {} })
  await upstream.end({ headers: { 'mcp-session-id': id } })
  t.ok((channels[0] as MemoryChannel).closed, 'DELETE closes the channel')
})

t.test('shared: later sessions are answered from the first initialize; a failed one is not kept', async (t) => {
  const { upstream, channels } = setup({ shared: true })
  const first = post(upstream, {}, [INIT])
  await new Promise((resolve) => setImmediate(resolve))
  const channel = channels[0] as MemoryChannel
  const sentId = (channel.sent[0] as { id: string }).id
  t.not(sentId, 1, 'the channel sees its own request id')
  channel.onmessage({ jsonrpc: '2.0', id: sentId, error: { code: -32602, message: 'unsupported version' } })
  const refused = (await first).messages[0] as unknown as { id: number, error: { message: string } }
  t.equal(refused.id, 1, 'the client sees its own id')
  const second = post(upstream, {}, [INIT])
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(channel.sent.length, 2, 'a failed initialize is not reused: the next one goes to the process')
  channel.onmessage({ jsonrpc: '2.0', id: (channel.sent[1] as { id: string }).id, result: { protocolVersion: '2025-11-25' } })
  t.equal((await second).kind, 'single')
  const third = await post(upstream, {}, [{ ...INIT, id: 'c' }])
  t.same(third.messages, [{ jsonrpc: '2.0', id: 'c', result: { protocolVersion: '2025-11-25' } }])
  t.equal(channel.sent.length, 2, 'answered from the first result')
  t.equal(channels.length, 1, 'one channel for all')
  channel.onmessage({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })
  await upstream.close()
  t.ok(channel.closed)
  await t.rejects(post(upstream, {}, [INIT]), /unavailable/)
})

t.test('a session no one uses past idleMs has its channel closed; one with a GET stream open is kept', async (t) => {
  const { upstream, channels } = setup({ idleMs: 40 })
  t.teardown(() => upstream.close())
  await initialize(t, upstream, channels)
  const listening = await initialize(t, upstream, channels)
  const get = await upstream.listen({ headers: { 'mcp-session-id': listening } })
  t.teardown(() => { get.destroy() })
  await new Promise((resolve) => setTimeout(resolve, 120))
  t.ok((channels[0] as MemoryChannel).closed, 'the forgotten session\'s channel is closed')
  t.notOk((channels[1] as MemoryChannel).closed, 'a session with its GET stream open is in use')
  t.equal(upstream.size, 1)
})

t.test('LineSplitter: lines across chunks, CRLF, the limit', async (t) => {
  const lines: string[] = []
  const splitter = new LineSplitter(8, (line) => lines.push(line.toString()))
  t.ok(splitter.push(Buffer.from('ab')))
  t.ok(splitter.push(Buffer.from('c\r\n\nde\nf')))
  splitter.flush()
  t.same(lines, ['abc', 'de', 'f'])
  t.notOk(splitter.push(Buffer.from('123456789')), 'a line past the limit is refused')
})

t.test('shared: request ids and progress tokens are freed on the answer, on cancellation and when the session ends', async (t) => {
  const { upstream, channels } = setup({ shared: true })
  t.teardown(() => upstream.close())
  const maps = (): [number, number] => {
    const shared = (upstream as unknown as { shared: { requests: Map<string, unknown>, tokens: Map<string, unknown> } }).shared
    return [shared.requests.size, shared.tokens.size]
  }
  const init = post(upstream, {}, [INIT])
  await new Promise((resolve) => setImmediate(resolve))
  const channel = channels[0] as MemoryChannel
  channel.onmessage({ jsonrpc: '2.0', id: (channel.sent[0] as { id: string }).id, result: { protocolVersion: '2025-11-25' } })
  const sessionId = (await init).sessionId as string
  const withProgress = (id: number): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'x', _meta: { progressToken: `p${id}` } } })
  const headers = { 'mcp-session-id': sessionId }

  const answered = post(upstream, headers, [withProgress(2)])
  await new Promise((resolve) => setImmediate(resolve))
  t.same(maps(), [1, 1], 'one request and its token in flight')
  channel.onmessage({ jsonrpc: '2.0', id: (channel.sent.at(-1) as { id: string }).id, result: {} })
  await answered
  t.same(maps(), [0, 0], 'freed by the answer')

  const cancelled = post(upstream, headers, [withProgress(3)])
  cancelled.catch(() => {})
  await new Promise((resolve) => setImmediate(resolve))
  t.same(maps(), [1, 1])
  await post(upstream, headers, [{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } }])
  t.same(maps(), [0, 0], 'freed by the cancellation (no answer will come)')

  const left = post(upstream, headers, [withProgress(4)])
  left.catch(() => {})
  await new Promise((resolve) => setImmediate(resolve))
  t.same(maps(), [1, 1])
  await upstream.end({ headers })
  t.same(maps(), [0, 0], 'freed when the session ends')
})
