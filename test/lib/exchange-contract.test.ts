/**
 * The pipeline's contract: the same exchanges (an answer, progress then the answer, a server
 * request mid-call, a cancellation, an upstream crash, stray and duplicate responses, a timeout)
 * through every client sink (a JSON body, a logged SSE stream, an unlogged SSE stream, WebSocket
 * frames) and every upstream kind (Streamable HTTP answering in SSE or JSON, stdio, legacy
 * HTTP+SSE). Each upstream is a real server or child process playing the same script
 * (test/helpers/scripted-peer.mjs); what a client receives must not depend on the route it took.
 */
import t, { type Test } from 'tap'
import { PassThrough, type Readable } from 'node:stream'
import { Abort } from '../../lib/abort.ts'
import { Forwarder, type ClientAnswer, type ExchangeContext } from '../../lib/forwarder.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import type { Logger } from '../../lib/logger.ts'
import type { ExchangeObserver } from '../../lib/observer.ts'
import { SessionManager } from '../../lib/session/manager.ts'
import { MemorySessionStore } from '../../lib/session/memory-store.ts'
import { resolveSession, type ParsedBody } from '../../lib/session/resolve.ts'
import { MemoryEventStore } from '../../lib/events/memory-store.ts'
import { StreamHub } from '../../lib/streams/hub.ts'
import { STREAMING_DEFAULTS } from '../../lib/streams/options.ts'
import { createUpstream } from '../../lib/upstream/create.ts'
import { checkTimeouts, checkUpstreamOptions } from '../../lib/upstream/options.ts'
import type { Upstream } from '../../lib/upstream/types.ts'
import { eventually } from '../helpers/peers.ts'
import { scriptedLegacySse, scriptedPeerScript, scriptedStreamableHttp, type ScriptedServer } from '../helpers/scripted-http.ts'

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {} }
type Message = JsonRpcMessage & { id?: string | number, method?: string, params?: Record<string, unknown>, result?: { content?: Array<{ text: string }> }, error?: { code: number } }

type UpstreamKind = 'http-sse' | 'http-json' | 'stdio' | 'legacy-sse'
type SinkKind = 'logged' | 'unlogged' | 'frames'
const UPSTREAMS: UpstreamKind[] = ['http-sse', 'http-json', 'stdio', 'legacy-sse']
const SINKS: SinkKind[] = ['logged', 'unlogged', 'frames']
const VERSION = '2025-11-25'
/** Every case is bounded: a sink that loses an answer fails here instead of hanging the run. */
const CASE_TIMEOUT_MS = 10_000

async function upstreamOf (t: Test, kind: UpstreamKind, toolTimeouts: Record<string, number> | undefined): Promise<{ upstream: Upstream, timeouts: ReturnType<typeof checkTimeouts>, server: ScriptedServer | undefined }> {
  let server: ScriptedServer | undefined
  let config: Record<string, unknown>
  if (kind === 'stdio') {
    config = { kind: 'stdio', command: process.execPath, args: [scriptedPeerScript] }
  } else {
    server = kind === 'legacy-sse' ? await scriptedLegacySse() : await scriptedStreamableHttp(kind === 'http-sse' ? 'sse' : 'json')
    config = { kind: kind === 'legacy-sse' ? 'sse' : 'streamable-http', url: server.url }
  }
  if (toolTimeouts !== undefined) config.toolTimeouts = toolTimeouts
  const upstream = createUpstream(checkUpstreamOptions('upstream', config, 'scripted'), quiet)
  t.teardown(async () => {
    await upstream.destroy()
    await server?.close()
  })
  return { upstream, timeouts: checkTimeouts('upstream', config), server }
}

/** The messages of an SSE body as they come (priming events and comments have no data). */
function readSse (body: Readable, onMessage: (message: Message) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = ''
    body.setEncoding('utf8')
    body.on('data', (chunk: string) => {
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const event = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = event.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n')
        if (data !== '') onMessage(JSON.parse(data) as Message)
      }
    })
    body.once('end', resolve)
    body.once('error', reject)
  })
}

interface Client {
  /** What each answer took: the sink. */
  routes: Set<string>
  drops: number
  /** The HTTP upstream heard a call of this tool (undefined for stdio: its progress tells). */
  heard: ScriptedServer['heard'] | undefined
  /** One client request; resolves with every message the client received for it, in order. */
  call: (message: Message, onMessage?: (message: Message) => void) => Promise<Message[]>
}

async function clientOf (t: Test, sink: SinkKind, kind: UpstreamKind, toolTimeouts?: Record<string, number>): Promise<Client> {
  const { upstream, timeouts, server } = await upstreamOf(t, kind, toolTimeouts)
  const sessions = new SessionManager(new MemorySessionStore())
  const hub = sink === 'unlogged' ? undefined : new StreamHub(new MemoryEventStore(), STREAMING_DEFAULTS, quiet)
  t.teardown(async () => { await hub?.closeAll() })
  const state = { drops: 0 }
  const counter: ExchangeObserver = { dropped: () => { state.drops++ } }
  const forwarder = new Forwarder({ upstream, sessions, streams: hub, observers: [counter], timeouts })
  let sessionId: string | undefined
  const routes = new Set<string>()

  const call = async (message: Message, onMessage?: (message: Message) => void): Promise<Message[]> => {
    const received: Message[] = []
    const see = (m: Message): void => {
      received.push(m)
      onMessage?.(m)
    }
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': VERSION }
    if (sessionId !== undefined) headers['mcp-session-id'] = sessionId
    const body: ParsedBody = { raw: Buffer.from(JSON.stringify(message)), messages: [message], batch: false }
    const resolution = await resolveSession(sessions, headers, body, { upstream: 'scripted' })
    const ctx: ExchangeContext = { headers, resolution, signal: new Abort(), log: quiet }
    if (sink === 'frames') {
      ctx.frames = {
        send: (text) => { see(JSON.parse(text) as Message) },
        sessionOpened: (session) => { sessionId = session.id }
      }
    }
    let answer: ClientAnswer
    try {
      answer = await forwarder.post(ctx, body)
    } catch (err) {
      // A coded failure before any answer: the adapter sends it as the request's error.
      const code = (err as { code?: string }).code ?? 'uncoded'
      routes.add(`thrown ${code}`)
      see({ jsonrpc: '2.0', id: message.id as number, error: { code: -1, message: code } } as unknown as Message)
      return received
    }
    routes.add(answer.kind)
    if (answer.kind === 'messages') {
      // Whole messages: the JSON body over HTTP, one frame each over a WebSocket.
      if (answer.headers['mcp-session-id'] !== undefined) sessionId = answer.headers['mcp-session-id']
      for (const m of answer.messages) see(m as Message)
      if (answer.raw !== undefined) t.same(JSON.parse(answer.raw.toString('utf8')), answer.batch ? answer.messages : answer.messages[0], 'the upstream\'s own bytes say the same')
    } else if (answer.kind === 'refused') {
      see(JSON.parse(answer.reply.body.toString('utf8')) as Message)
    } else if (answer.kind === 'sse') {
      if (answer.headers['mcp-session-id'] !== undefined) sessionId = answer.headers['mcp-session-id']
      await readSse(answer.body, see)
    } else if (answer.kind === 'logged') {
      if (answer.headers['mcp-session-id'] !== undefined) sessionId = answer.headers['mcp-session-id']
      const response = new PassThrough()
      const read = readSse(response, see)
      await answer.attach(response)
      await read
    }
    return received
  }
  await call({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: VERSION, capabilities: { roots: {} }, clientInfo: { name: 'contract', version: '0' } } } as Message)
  await call({ jsonrpc: '2.0', method: 'notifications/initialized' } as Message)
  t.ok(sessionId, 'a session was opened')
  return { routes, call, heard: server?.heard, get drops () { return state.drops } }
}

const tool = (id: number, name: string): Message => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, _meta: { progressToken: `p${id}` } } } as Message)
const responsesTo = (messages: Message[], id: number | string): Message[] => messages.filter((m) => m.method === undefined && m.id === id)
const textOf = (message: Message | undefined): string | undefined => message?.result?.content?.[0]?.text

/** Exactly one answer for `id`, and it is what `check` expects. */
function oneAnswer (t: Test, messages: Message[], id: number, check: (message: Message) => boolean, what: string): void {
  const answers = responsesTo(messages, id)
  t.equal(answers.length, 1, `exactly one answer for request ${id}`)
  t.ok(answers[0] !== undefined && check(answers[0]), `${what}: ${JSON.stringify(answers[0])}`)
}

type Scenario = (t: Test, client: Client, kind: UpstreamKind) => Promise<void>

const SCENARIOS: Record<string, Scenario> = {
  answer: async (t, client) => {
    const got = await client.call(tool(2, 'answer'))
    oneAnswer(t, got, 2, (m) => textOf(m) === 'answered', 'the result')
    t.equal(got.length, 1, 'nothing else')
  },
  'progress then answer': async (t, client) => {
    const got = await client.call(tool(2, 'progress'))
    oneAnswer(t, got, 2, (m) => textOf(m) === 'after progress', 'the result')
    const progress = got.filter((m) => m.method === 'notifications/progress')
    t.same(progress.map((m) => m.params?.progress), [1, 2], 'both progress notifications, in order')
    t.ok(got.indexOf(progress[1] as Message) < got.indexOf(responsesTo(got, 2)[0] as Message), 'progress before the result')
  },
  'server request mid-call': async (t, client, kind) => {
    if (kind === 'http-json') {
      // A JSON answer is one body: a server request cannot come before its own call's result.
      t.pass('not possible over JSON answers')
      return
    }
    const answered: Array<Promise<Message[]>> = []
    const got = await client.call(tool(2, 'ask'), (m) => {
      if (m.method === 'roots/list' && m.id !== undefined) answered.push(client.call({ jsonrpc: '2.0', id: m.id, result: { roots: [] } } as unknown as Message))
    })
    t.equal(answered.length, 1, 'the client was asked once')
    t.same(await answered[0], [], 'its answer is accepted (no body)')
    oneAnswer(t, got, 2, (m) => textOf(m) === 'roots: {"roots":[]}', 'the result carries the client\'s answer')
  },
  cancellation: async (t, client, kind) => {
    let cancelled: Promise<Message[]> | undefined
    const cancel = (): void => {
      cancelled ??= client.call({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2, reason: 'changed my mind' } } as Message)
    }
    // A JSON answer carries no progress: the client cancels once the upstream has its call.
    if (kind === 'http-json') void client.heard?.('hang').then(cancel)
    const got = await client.call(tool(2, 'hang'), (m) => {
      if (m.method === 'notifications/progress') cancel()
    })
    t.same(await cancelled, [], 'the cancellation is accepted')
    t.same(responsesTo(got, 2).filter((m) => m.result !== undefined), [], 'no result for a cancelled request')
    const cancels = JSON.parse(textOf(responsesTo(await client.call(tool(3, 'cancels')), 3)[0]) ?? '[]') as Array<{ requestId: unknown }>
    t.same(cancels.map((c) => c.requestId), [2], 'the upstream heard the cancellation')
  },
  'upstream crash': async (t, client) => {
    const got = await client.call(tool(2, 'crash'))
    // In the answer: "unavailable" (-32060), "ended the stream" (-32065) or the channel's "exited"
    // error; before any answer: a coded upstream failure the adapter sends as the request's error.
    const upstreamError = (m: Message): boolean => m.error !== undefined && ([-32060, -32065, -32068].includes(m.error.code) || (m.error.code === -1 && /^MCP_GW_UPSTREAM_/.test((m.error as { message?: string }).message ?? '')))
    oneAnswer(t, got, 2, upstreamError, 'an upstream error')
  },
  'stray and duplicate responses': async (t, client) => {
    const got = await client.call(tool(2, 'stray'))
    oneAnswer(t, got, 2, (m) => textOf(m) === 'the one answer', 'the first result')
    t.same(responsesTo(got, 'nobody-asked'), [], 'the stray is not delivered')
    // The duplicate may come in a later read than the answer (stdio): wait for it, bounded.
    await eventually(() => client.drops >= 2).catch(() => {})
    t.equal(client.drops, 2, 'both dropped responses counted, the stray and the duplicate')
  },
  timeout: async (t, client) => {
    const got = await client.call(tool(2, 'hang'))
    oneAnswer(t, got, 2, (m) => m.error?.code === -32061, 'the timeout error')
    // The gateway's cancel is not awaited: asked again (a bounded number of times) until it is there.
    let cancels: Array<{ requestId: unknown, reason: unknown }> = []
    for (let id = 3; id < 53 && cancels.length === 0; id++) {
      cancels = JSON.parse(textOf(responsesTo(await client.call(tool(id, 'cancels')), id)[0]) ?? '[]') as typeof cancels
    }
    t.same(cancels, [{ requestId: 2, reason: 'Request timed out' }], 'the upstream was told')
  }
}

const seen = new Map<SinkKind, Set<string>>()
for (const sink of SINKS) {
  for (const kind of UPSTREAMS) {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      t.test(`${name}: ${kind} upstream, ${sink} client`, { timeout: CASE_TIMEOUT_MS }, async (t) => {
        // Only the hanging call times out: an initialize meets the default timeout, whatever the load.
        const client = await clientOf(t, sink, kind, name === 'timeout' ? { hang: 300 } : undefined)
        await scenario(t, client, kind)
        const routes = seen.get(sink) ?? new Set<string>()
        for (const route of client.routes) routes.add(route)
        seen.set(sink, routes)
      })
    }
  }
}

t.test('every sink was exercised', async (t) => {
  t.ok(seen.get('logged')?.has('logged'), 'logged SSE')
  t.ok(seen.get('logged')?.has('messages') === true && seen.get('unlogged')?.has('messages') === true, 'JSON bodies')
  t.ok(seen.get('unlogged')?.has('sse'), 'unlogged SSE')
  t.ok(seen.get('frames')?.has('framed'), 'WebSocket frames')
  // Whole messages go out as one frame each; a thrown failure as the request's error.
  t.same([...seen.get('frames') ?? []].filter((route) => route !== 'framed' && route !== 'messages' && !route.startsWith('thrown ')), [], 'never an SSE stream for a WebSocket client')
})
