/**
 * Request timeouts that fit MCP: restarted by progress, capped by a ceiling, per tool; on expiry
 * the upstream is told (`notifications/cancelled`) and the client gets a JSON-RPC error.
 */
import t from 'tap'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { client, eventually, gateway, MODES, textOf, upstream } from '../helpers/peers.ts'
import { stdioUpstream } from '../helpers/stdio.ts'

const failure = async (promise: Promise<unknown>): Promise<{ code: number, message: string } | undefined> =>
  await promise.then(() => undefined, (err: unknown) => err as { code: number, message: string })

for (const mode of MODES) {
  t.test(`HTTP upstream, ${mode.name}`, async (t) => {
    const up = await upstream(t, { jsonResponse: mode.jsonResponse })
    const gw = await gateway(t, { upstream: { url: up.url, requestTimeout: 300, toolTimeouts: { wait: 2000 } } })
    const { client: c } = await client(t, gw.url)

    const started = Date.now()
    const err = await failure(c.callTool({ name: 'countdown', arguments: { from: 1, delayMs: 1500 } }))
    t.equal(err?.code, -32061, 'a quiet call past the timeout gets MCP_GW_UPSTREAM_TIMEOUT')
    t.ok(Date.now() - started < 1400, 'and gets it when the timeout passes, not when the upstream answers')

    t.equal(textOf(await c.callTool({ name: 'wait', arguments: { ms: 600 } })), 'waited', 'a tool with its own timeout may take longer')
    const cancelled = up.record.cancelled.length
    const late = await failure(c.callTool({ name: 'wait', arguments: { ms: 5000 } }))
    t.equal(late?.code, -32061)
    await eventually(() => up.record.cancelled.length === cancelled + 1)
    t.pass('the upstream was told to cancel the request')
  })
}

t.test('progress restarts the clock; the ceiling holds regardless', async (t) => {
  const up = await upstream(t)
  // A 500 ms timeout against progress every 100 ms: room for a busy CI machine's pauses.
  const gw = await gateway(t, { upstream: { url: up.url, requestTimeout: 500, maxRequestTimeout: 2000 } })
  const { client: c } = await client(t, gw.url)
  let reports = 0
  const result = await c.callTool({ name: 'countdown', arguments: { from: 12, delayMs: 100 } }, CallToolResultSchema, { onprogress: () => { reports++ } })
  t.equal(textOf(result), 'liftoff', '1.2 s of work with progress every 100 ms outlives a 500 ms timeout')
  t.equal(reports, 12)
  const err = await failure(c.callTool({ name: 'countdown', arguments: { from: 40, delayMs: 100 } }, CallToolResultSchema, { onprogress: () => {} }))
  t.equal(err?.code, -32061, 'past the ceiling the call ends, progress or not')
})

t.test('stdio upstream: the timeout reaches the child as a cancellation', async (t) => {
  // The tool's own timeout: a child starting on a busy machine may take over a second to answer
  // initialize, which a 1 s timeout for every request would cut.
  const gw = await gateway(t, { upstream: stdioUpstream({ toolTimeouts: { wait: 1000 } }) })
  const { client: c } = await client(t, gw.url)
  const err = await failure(c.callTool({ name: 'wait', arguments: { ms: 3000 } }))
  t.equal(err?.code, -32061)
  t.match(err?.message, /did not answer in time/)
  t.same(await c.ping(), {}, 'the session goes on')
})

t.test('bad timeout options are refused, naming the option', async (t) => {
  await t.rejects(gateway(t, { upstream: { url: 'http://127.0.0.1:1/mcp', requestTimeout: -1 } }), /upstream\.requestTimeout/)
  await t.rejects(gateway(t, { upstream: { url: 'http://127.0.0.1:1/mcp', toolTimeouts: { x: 'soon' as unknown as number } } }), /upstream\.toolTimeouts\.x/)
})
