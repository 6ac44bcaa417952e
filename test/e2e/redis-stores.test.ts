/** The gateway on the Redis stores: the same flows as on memory, sessions and log in Redis. */
import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { RedisSessionStore } from '../../lib/redis/session-store.ts'
import { openSession, postHeaders } from '../helpers/http.ts'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'
import { countScripts, redisClient, skipWithoutRedis } from '../helpers/redis.ts'
import { readEvents } from '../helpers/sse.ts'

/** The stores a test makes are closed with it (their pub/sub connections would keep it alive). */
function closing<T extends { close (): Promise<void> }> (t: { teardown (fn: () => unknown): void }, store: T): T {
  t.teardown(() => store.close())
  return store
}

/** A gateway on the demo upstream whose sessions and event log live in Redis, under a prefix of its own. */
async function redisGateway (t: { teardown (fn: () => unknown): void }) {
  const { client: redis, prefix } = await redisClient(t)
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstream: up.url,
    sessions: { store: closing(t, new RedisSessionStore({ client: redis, keyPrefix: prefix })) },
    streaming: { store: closing(t, new RedisEventStore({ client: redis, keyPrefix: prefix })) }
  })
  return { redis, prefix, gw }
}

t.test('SDK client through a gateway whose sessions and event log live in Redis', { skip: await skipWithoutRedis() }, async (t) => {
  const { redis, prefix, gw } = await redisGateway(t)
  const { client: c, transport } = await client(t, gw.url)
  const progress: number[] = []
  const result = await c.callTool({ name: 'countdown', arguments: { from: 5, delayMs: 1 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) })
  t.equal(textOf(result), 'liftoff')
  t.same(progress, [1, 2, 3, 4, 5])
  t.ok(await redis.exists(`${prefix}s:${transport.sessionId as string}`), 'the session record is in Redis')

  const sessionId = await openSession(gw.url)
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'countdown', arguments: { from: 3, delayMs: 0 }, _meta: { progressToken: 'r' } } }) })
  const text = await res.text()
  const primingId = /id: (\S+)\ndata: \n/.exec(text)?.[1] as string
  const replay = await fetch(gw.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'last-event-id': primingId } })
  const replayed = await replay.text()
  t.equal((replayed.match(/notifications\/progress/g) ?? []).length, 3, 'replayed from the Redis log')
  t.match(replayed, /liftoff/)
  await c.close()
})

t.test('a gateway restarted on the same Redis: the client resumes its GET stream, numbering goes on', { skip: await skipWithoutRedis() }, async (t) => {
  const { z } = await import('zod')
  const { client: redis, prefix } = await redisClient(t)
  const up = await upstream(t, {
    extraTools: (server) => {
      server.registerTool('announce', { inputSchema: { text: z.string() } }, async ({ text }) => {
        await server.server.sendLoggingMessage({ level: 'info', data: text })
        return { content: [{ type: 'text', text: 'announced' }] }
      })
    }
  })
  const options = () => ({
    upstream: up.url,
    sessions: { store: closing(t, new RedisSessionStore({ client: redis, keyPrefix: prefix })) },
    streaming: { store: closing(t, new RedisEventStore({ client: redis, keyPrefix: prefix })) }
  })
  const announce = async (url: string, sessionId: string, text: string): Promise<void> => {
    const res = await fetch(url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', id: text, method: 'tools/call', params: { name: 'announce', arguments: { text } } }) })
    await res.text()
  }
  // Events with data (not the priming event), as { id, data of the logging message }.
  const readUntil = async (res: Response, count: number, primed: boolean): Promise<Array<{ id: string, data: string }>> => {
    const { events } = await readEvents(res, count + (primed ? 1 : 0))
    return events.filter((e) => e.data !== '').map((e) => ({ id: e.id as string, data: JSON.parse(e.data).params.data }))
  }

  const first = await gateway(t, options())
  const sessionId = await openSession(first.url)
  const get = await fetch(first.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } })
  const reading = readUntil(get, 2, true)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await announce(first.url, sessionId, 'one')
  await announce(first.url, sessionId, 'two')
  const before = await reading
  t.same(before.map((e) => e.data), ['one', 'two'])
  await first.app.close()

  const second = await gateway(t, options())
  const resumed = await fetch(second.url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'last-event-id': before[0]?.id as string } })
  t.equal(resumed.status, 200, 'the session and its log survived the restart')
  const after = readUntil(resumed, 2, false)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await announce(second.url, sessionId, 'three')
  const events = await after
  t.same(events.map((e) => e.data), ['two', 'three'], 'the missed event from the log, then live')
  t.same(events.map((e) => e.id), ['g_2', 'g_3'], 'numbering goes on where the first instance left it')
})

t.test('the preset on { store: { type: "redis" } }', { skip: await skipWithoutRedis() }, async (t) => {
  const { createGateway } = await import('../../examples/gateway/create-gateway.ts')
  const { REDIS_URL } = await import('../helpers/redis.ts')
  const { client: redis, prefix } = await redisClient(t)
  const up = await upstream(t)
  const app = await createGateway({ upstream: up.url, logLevel: false, store: { type: 'redis', url: REDIS_URL, keyPrefix: prefix } })
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client: c, transport } = await client(t, `${address}/mcp`)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'on redis' } })), 'on redis')
  t.ok(await redis.exists(`${prefix}s:${transport.sessionId as string}`), 'the session lives in Redis')
  await c.close()

  await t.rejects(createGateway({ upstream: up.url, logLevel: false, store: { type: 'redis', url: 'redis://127.0.0.1:9', connectTimeoutMs: 500 } }), /cannot reach Redis at redis:\/\/127\.0\.0\.1:9/)
  await t.rejects(createGateway({ upstream: up.url, store: { type: 'redis', url: 'http://x' } as never }), { code: 'MCP_GW_INVALID_OPTION', message: /store\.url/ })
  await t.rejects(createGateway({ upstream: up.url, store: { type: 'disk' } as never }), { code: 'MCP_GW_INVALID_OPTION', message: /"store"/ })
})

t.test('a tools/call answered with SSE costs the shared log one script call: claim, event and release together', { skip: await skipWithoutRedis() }, async (t) => {
  const { redis, prefix, gw } = await redisGateway(t)
  const sessionId = await openSession(gw.url)
  const call = (id: number): Promise<Response> => fetch(gw.url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }), body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: `n${id}` } } }) })
  await (await call(1)).text() // the scripts are loaded: what follows counts calls only
  const scripts = countScripts(redis)
  for (let id = 2; id < 12; id++) {
    const res = await call(id)
    t.equal(res.headers.get('content-type'), 'text/event-stream')
    t.match(await res.text(), new RegExp(`"text":"n${id}"`))
  }
  t.equal(scripts(), 10, 'ten answers, ten script calls')
})
