import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { client, gateway, upstream } from '../helpers/peers.ts'
import { postHeaders, openSession } from '../helpers/http.ts'
import Fastify, { type FastifyPluginAsync } from 'fastify'
import fastifyMetricsModule from 'fastify-metrics'
import mcpGateway from '../../plugins/index.ts'

// fastify-metrics is CommonJS with `exports.default`, as a host importing it from ESM sees it.
const fastifyMetrics = ((fastifyMetricsModule as unknown as { default?: typeof fastifyMetricsModule }).default ?? fastifyMetricsModule) as unknown as FastifyPluginAsync<Record<string, unknown>>

function value (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return undefined
}

t.test('/metrics shows the MCP series after traffic, with low-cardinality labels', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, metrics: { toolNames: ['echo'], routeMetrics: true }, sessions: { maxSessions: 3 } })
  const { client: c, transport } = await client(t, gw.url)
  await c.listTools()
  await c.callTool({ name: 'echo', arguments: { text: 'secret-argument' } })
  await c.callTool({ name: 'countdown', arguments: { from: 3, delayMs: 0 } }, CallToolResultSchema, { onprogress: () => {} })
  await openSession(gw.url)
  await openSession(gw.url)
  const refused = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) })
  t.equal(refused.status, 503)
  await refused.text()

  const res = await fetch(gw.url.replace(/\/mcp$/, '/metrics'))
  t.equal(res.status, 200)
  const text = await res.text()
  t.equal(value(text, 'mcp_gateway_sessions_active'), 3)
  t.equal(value(text, 'mcp_gateway_sessions_created_total'), 3)
  t.equal(value(text, 'mcp_gateway_sessions_rejected_total'), 1)
  t.equal(value(text, 'mcp_gateway_refused_total{upstream="demo",code="MCP_GW_TOO_MANY_SESSIONS",status="503"}'), 1)
  t.equal(value(text, 'mcp_gateway_messages_total{upstream="demo",direction="client_to_upstream",kind="request",method="tools/call"}'), 2)
  t.equal(value(text, 'mcp_gateway_messages_total{upstream="demo",direction="upstream_to_client",kind="notification",method="notifications/progress"}'), 3)
  t.equal(value(text, 'mcp_gateway_tool_calls_total{upstream="demo",tool="echo"}'), 1)
  t.equal(value(text, 'mcp_gateway_tool_calls_total{upstream="demo",tool="other"}'), 1)
  t.match(text, /mcp_gateway_upstream_request_duration_seconds_count\{upstream="demo",method="tools\/call"\} 2/)
  t.match(text, /mcp_gateway_event_log_events \d+/)
  t.match(text, /mcp_gateway_sse_streams_open \d+/)
  t.match(text, /http_request_duration_seconds_count/, 'HTTP metrics from fastify-metrics')
  t.match(text, /process_cpu_user_seconds_total/, 'Node vitals')
  t.notMatch(text, new RegExp(transport.sessionId as string), 'never a session id')
  t.notMatch(text, /secret-argument/, 'never an argument')
})

t.test('upstream errors are counted by kind; two gateways in one process do not collide', async (t) => {
  const gw1 = await gateway(t, { upstream: { name: 'down', url: 'http://127.0.0.1:9/mcp' } })
  const up = await upstream(t)
  await gateway(t, { upstream: up.url })
  const res = await fetch(gw1.url, { method: 'POST', headers: postHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) })
  t.equal(res.status, 502)
  await res.text()
  const text = await (await fetch(gw1.url.replace(/\/mcp$/, '/metrics'))).text()
  t.equal(value(text, 'mcp_gateway_upstream_errors_total{upstream="down",kind="unavailable"}'), 1)
  t.equal(value(text, 'mcp_gateway_refused_total{upstream="down",code="MCP_GW_UPSTREAM_UNAVAILABLE",status="502"}'), 1)
  t.notMatch(text, /http_request_duration_seconds/, 'route histograms are opt-in')
})

t.test('events evicted by the in-memory log\'s global byte budget are counted', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, streaming: { retention: { maxBytesTotal: 2000 } } })
  const { client: c } = await client(t, gw.url)
  for (let i = 0; i < 5; i++) await c.callTool({ name: 'echo', arguments: { text: 'x'.repeat(400) } })
  const scrape = async (): Promise<number | undefined> => value(await (await fetch(gw.url.replace(/\/mcp$/, '/metrics'))).text(), 'mcp_gateway_event_log_evicted_total')
  const evicted = await scrape()
  t.ok(evicted !== undefined && evicted > 0, `counted (${String(evicted)})`)
  t.ok((await gw.app.mcpEvents.stats()).bytes <= 2000, 'the log is within its budget')
  t.equal(await scrape(), evicted, 'a second scrape adds nothing new')
})

t.test('a host that registered fastify-metrics first: the MCP series show on the host\'s endpoint', async (t) => {
  const up = await upstream(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyMetrics, { endpoint: '/host-metrics', routeMetrics: { enabled: false }, clearRegisterOnInit: true })
  await app.register(mcpGateway, { upstream: { name: 'embedded', url: up.url }, path: '/mcp' })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const { client: c } = await client(t, `${address}/mcp`)
  await c.callTool({ name: 'echo', arguments: { text: 'hi' } })

  t.equal(app.mcpMetricsRegistry, app.metrics.client.register, 'the host\'s own client and registry')
  const text = await (await fetch(`${address}/host-metrics`)).text()
  t.equal(value(text, 'mcp_gateway_sessions_active'), 1)
  t.equal(value(text, 'mcp_gateway_messages_total{upstream="embedded",direction="client_to_upstream",kind="request",method="tools/call"}'), 1)
  t.match(text, /process_cpu_user_seconds_total/, 'the host\'s Node vitals beside them')
  t.equal((await fetch(`${address}/metrics`)).status, 404, 'no second endpoint')
})

t.test('a host with fastify-metrics: a gateway closed and built again in the same process registers its series again', async (t) => {
  const up = await upstream(t)
  for (const round of [1, 2]) {
    const app = Fastify()
    await app.register(fastifyMetrics, { endpoint: '/host-metrics', defaultMetrics: { enabled: false }, routeMetrics: { enabled: false } })
    await app.register(mcpGateway, { upstream: { name: 'again', url: up.url }, path: '/mcp' })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    await openSession(`${address}/mcp`)
    const text = await (await fetch(`${address}/host-metrics`)).text()
    t.equal(value(text, 'mcp_gateway_sessions_active'), 1, `round ${round}: this gateway's own session count`)
    await app.close()
  }
})

t.test('a host with fastify-metrics: options that belong to its registration are refused', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyMetrics, { endpoint: '/m', defaultMetrics: { enabled: false } })
  await t.rejects(async () => { await app.register(mcpGateway, { upstream: 'http://127.0.0.1:9/mcp', metrics: { endpoint: '/metrics' } }) }, /endpoint.*host's own fastify-metrics/)
})
