/** The gateway on the Redis stores: the same flows as on memory, sessions and log in Redis. */
import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { RedisEventStore } from '../../lib/redis/event-store.ts'
import { RedisSessionStore } from '../../lib/redis/session-store.ts'
import { openSession, postHeaders } from '../helpers/http.ts'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'
import { redisClient, skipWithoutRedis } from '../helpers/redis.ts'

t.test('SDK client through a gateway whose sessions and event log live in Redis', { skip: await skipWithoutRedis() }, async (t) => {
  const { client: redis, prefix } = await redisClient(t)
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstream: up.url,
    sessions: { store: new RedisSessionStore({ client: redis, keyPrefix: prefix }) },
    streaming: { store: new RedisEventStore({ client: redis, keyPrefix: prefix }) }
  })
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
