/**
 * Random requests against a live gateway (random methods, bodies and headers, sessions the fuzzer
 * opened itself): never a 5xx the input caused, every refusal a JSON-RPC error body, and an honest
 * SDK session calling through it the whole time loses nothing.
 */
import t from 'tap'
import fc from 'fast-check'
import { Pool } from 'undici'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000)

const methods = fc.constantFrom('POST', 'POST', 'POST', 'POST', 'GET', 'DELETE', 'PUT')
const messages = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.oneof(fc.integer(), fc.string({ maxLength: 40 })), method: fc.constant('initialize'), params: fc.record({ protocolVersion: fc.constantFrom('2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '1999-01-01'), capabilities: fc.object({ maxDepth: 2 }), clientInfo: fc.record({ name: fc.string(), version: fc.string() }) }, { requiredKeys: [] }) }),
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.oneof(fc.integer(), fc.string({ maxLength: 40 })), method: fc.constantFrom('tools/call', 'tools/list', 'ping', 'resources/list', 'nope', 'server/discover'), params: fc.record({ name: fc.constantFrom('echo', 'add', 'missing', ''), arguments: fc.object({ maxDepth: 2 }) }, { requiredKeys: [] }) }),
  fc.record({ jsonrpc: fc.constant('2.0'), method: fc.constantFrom('notifications/initialized', 'notifications/cancelled', 'notifications/progress'), params: fc.object({ maxDepth: 2 }) }),
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), result: fc.object({ maxDepth: 2 }) }),
  fc.anything({ maxDepth: 3 })
)
const bodies = fc.oneof(
  { arbitrary: messages.map((m) => JSON.stringify(m)), weight: 6 },
  { arbitrary: fc.array(messages, { maxLength: 4 }).map((m) => JSON.stringify(m)), weight: 1 },
  { arbitrary: fc.string(), weight: 1 },
  { arbitrary: fc.json(), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes)), weight: 1 }
)
const headerValue = fc.stringMatching(/^[\x21-\x7e]{0,60}$/)
const request = fc.record({
  method: methods,
  body: bodies,
  // Mostly well-formed envelopes, so the fuzz reaches past the first checks into sessions.
  contentType: fc.oneof({ arbitrary: fc.constant('application/json'), weight: 8 }, { arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', undefined), weight: 1 }, { arbitrary: headerValue, weight: 1 }),
  accept: fc.oneof({ arbitrary: fc.constant('application/json, text/event-stream'), weight: 8 }, { arbitrary: fc.constantFrom('text/event-stream', 'application/json', '*/*', undefined), weight: 1 }, { arbitrary: headerValue, weight: 1 }),
  session: fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: fc.nat(), weight: 6 }, { arbitrary: headerValue, weight: 1 }),
  version: fc.oneof({ arbitrary: fc.constant('2025-11-25'), weight: 6 }, { arbitrary: fc.constantFrom('2025-06-18', '2025-03-26', '2026-07-28', undefined), weight: 3 }, { arbitrary: headerValue, weight: 1 }),
  lastEventId: fc.option(headerValue, { nil: undefined }),
  mcpMethod: fc.option(fc.constantFrom('tools/call', 'tools/list', 'ping'), { nil: undefined })
})

t.test(`${RUNS} random requests against a live gateway`, async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { url: up.url, requestTimeout: 2000 } })
  const url = new URL(gw.url)
  const pool = new Pool(url.origin, { connections: 8 })
  t.teardown(() => pool.close())

  const { client: honest } = await client(t, gw.url)
  let honestCalls = 0
  const honestFailures: unknown[] = []
  let fuzzing = true
  const loop = (async () => {
    while (fuzzing) {
      try {
        const text = textOf(await honest.callTool({ name: 'echo', arguments: { text: `call ${honestCalls}` } }))
        if (text !== `call ${honestCalls}`) honestFailures.push(text)
      } catch (err) {
        honestFailures.push(err)
      }
      honestCalls++
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()

  // Sessions the fuzzer opened (never the honest one: its id is that client's secret).
  const sessions: string[] = []
  const statuses = new Map<number, number>()
  try {
    await fc.assert(fc.asyncProperty(request, async (input) => {
    const headers: Record<string, string> = {}
    if (input.contentType !== undefined) headers['content-type'] = input.contentType
    if (input.accept !== undefined) headers.accept = input.accept
    const session = typeof input.session === 'number' ? sessions[input.session % Math.max(1, sessions.length)] : input.session
    if (session !== undefined) headers['mcp-session-id'] = session
    if (input.version !== undefined) headers['mcp-protocol-version'] = input.version
    if (input.lastEventId !== undefined) headers['last-event-id'] = input.lastEventId
    if (input.mcpMethod !== undefined) headers['mcp-method'] = input.mcpMethod
    const res = await pool.request({ path: url.pathname, method: input.method as 'POST', headers, body: input.method === 'POST' || input.method === 'PUT' ? input.body : undefined })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    const type = String(res.headers['content-type'] ?? '')
    const opened = res.headers['mcp-session-id']
    if (typeof opened === 'string') sessions.push(opened)
    if (type.startsWith('text/event-stream') && input.method === 'GET') {
      res.body.destroy()
      return res.statusCode === 200
    }
    const text = await res.body.text()
    if (res.statusCode >= 500) throw new Error(`HTTP ${res.statusCode} for ${JSON.stringify(input).slice(0, 300)}: ${text.slice(0, 300)}`)
    if (res.statusCode >= 400) {
      const body = JSON.parse(text) as { jsonrpc?: string, error?: { code?: unknown } }
      if (body.jsonrpc !== '2.0' || !Number.isInteger(body.error?.code)) throw new Error(`not a JSON-RPC error: ${text.slice(0, 300)}`)
    }
    return true
    }), { numRuns: RUNS })
  } finally {
    fuzzing = false
    await loop
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; sessions opened: ${sessions.length}; honest calls: ${honestCalls}`)
  t.same(honestFailures, [], 'every honest call succeeded, in order')
  t.ok(honestCalls > 10, 'the honest client called throughout')
  t.same(await honest.ping(), {})
})
