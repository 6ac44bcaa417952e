/**
 * Limits that answer clearly: a request body over `bodyLimit` gets 413 with a JSON-RPC error
 * naming the limit; a tool result over `resultLimits` is cut to fit with a marker, or refused
 * with MCP_GW_RESULT_TOO_LARGE; both are counted. SDK clients of both eras, the demo upstreams
 * and server-everything (over stdio) as the tools.
 */
import t from 'tap'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient, modernUpstream } from '../helpers/eras.ts'
import { postHeaders } from '../helpers/http.ts'
import { everythingStdio } from '../helpers/published-servers.ts'
import type { Interceptor } from '../../lib/interceptors/chain.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

interface Item { type: string, text?: string }

const MARKER = /^\[truncated by the gateway: the result was (\d+) bytes, over this tool's limit of (\d+) bytes\]$/

async function metric (url: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(url.replace(/\/mcp$/, '/metrics'))).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const failure = async (promise: Promise<unknown>): Promise<McpError> =>
  await promise.then(() => { throw new Error('the call succeeded') }, (err: unknown) => err as McpError)

t.test('truncate: a text result over its tool\'s limit is cut to fit, with a marker; others pass untouched; counted', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, metrics: {}, resultLimits: { tools: { echo: 1024 } } })
  const { client: c } = await client(t, gw.url)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'short' } })), 'short', 'a result under its limit is untouched')
  // Two-byte characters and quotes, which JSON escapes: the limit is bytes of JSON, not characters.
  const long = 'é"'.repeat(2000)
  const cut = await c.callTool({ name: 'echo', arguments: { text: long } })
  const content = cut.content as Item[]
  t.equal(content.length, 2, 'the text cut, then the marker')
  const kept = content[0]?.text as string
  t.ok(kept.length > 200 && long.startsWith(kept), 'what is kept is the start of the text')
  const [, size, limit] = MARKER.exec(content[1]?.text ?? '') ?? []
  t.equal(Number(limit), 1024)
  t.ok(Number(size) > 6000, 'the marker gives the size of the whole result')
  const bytes = Buffer.byteLength(JSON.stringify({ content }))
  t.ok(bytes <= 1024 && bytes > 1000, `the result is cut to fit its limit, no shorter (${bytes} bytes)`)
  t.equal((await c.callTool({ name: 'add', arguments: { a: 2, b: 3 } })).isError, undefined, 'a tool with no limit is never limited')
  t.equal(await metric(gw.url, 'mcp_gateway_limited_total{upstream="demo",limit="result",action="truncated"}'), 1)
})

t.test('server-everything: an image over the limit cannot be cut, so it is refused; the session goes on', async (t) => {
  const gw = await gateway(t, { upstream: everythingStdio('everything'), metrics: {}, resultLimits: { maxBytes: 512 } })
  const { client: c } = await client(t, gw.url)
  const err = await failure(c.callTool({ name: 'get-tiny-image', arguments: {} }))
  t.equal(err.code, -32080, 'MCP_GW_RESULT_TOO_LARGE')
  t.match(err.message, /tool get-tiny-image is \d+ bytes, over its limit of 512 bytes/)
  t.match(err.data, { limit: 'resultLimits', bytes: 512 })
  const echoed = await c.callTool({ name: 'echo', arguments: { message: 'x'.repeat(2000) } })
  t.match((echoed.content as Item[]).at(-1)?.text, MARKER, 'its text results are cut to fit')
  t.equal(await metric(gw.url, 'mcp_gateway_limited_total{upstream="everything",limit="result",action="refused"}'), 1)
  t.equal(await metric(gw.url, 'mcp_gateway_limited_total{upstream="everything",limit="result",action="truncated"}'), 1)
})

t.test('error: a result over the limit answers MCP_GW_RESULT_TOO_LARGE; one under it goes through', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, resultLimits: { maxBytes: 2048, action: 'error' } })
  const { client: c } = await client(t, gw.url)
  const err = await failure(c.callTool({ name: 'echo', arguments: { text: 'y'.repeat(5000) } }))
  t.equal(err.code, -32080)
  t.match(err.message, /tool echo is \d+ bytes, over its limit of 2048 bytes/)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'fits' } })), 'fits')
})

t.test('the limits see what the client would be sent: a result an interceptor made larger is limited', async (t) => {
  const up = await upstream(t)
  const pad: Interceptor = {
    name: 'pad',
    match: { direction: 'upstream_to_client', kind: 'response', method: 'tools/call' },
    handler: (message) => ({ action: 'modify', message: { ...message, result: { content: [{ type: 'text', text: 'p'.repeat(3000) }] } } as JsonRpcMessage })
  }
  const gw = await gateway(t, { upstream: up.url, resultLimits: { maxBytes: 2048, action: 'error' }, route: { interceptors: [pad] } })
  const { client: c } = await client(t, gw.url)
  t.equal((await failure(c.callTool({ name: 'echo', arguments: { text: 'small' } }))).code, -32080)
})

t.test('2026-07-28 stateless client: the same limits', async (t) => {
  const up = await modernUpstream(t)
  const gw = await gateway(t, { upstream: { url: up.url, protocol: '2026' }, resultLimits: { tools: { echo: 300 } } })
  const c = await modernClient(t, gw.url)
  const cut = await c.callTool({ name: 'echo', arguments: { text: 'z'.repeat(1000) } })
  const content = cut.content as Item[]
  t.match(content.at(-1)?.text, MARKER)
  t.ok(Buffer.byteLength(JSON.stringify({ content })) <= 300)
})

t.test('a body over bodyLimit: 413 with a JSON-RPC error naming the limit, counted', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, metrics: {}, bodyLimit: 4096 })
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'w'.repeat(10_000) } } }) })
  t.equal(res.status, 413)
  const body = await res.json() as { error: { code: number, message: string, data: unknown } }
  t.equal(body.error.code, -32051)
  t.match(body.error.message, /bodyLimit of 4096 bytes/)
  t.same(body.error.data, { limit: 'bodyLimit', bytes: 4096 })
  t.equal(await metric(gw.url, 'mcp_gateway_limited_total{upstream="demo",limit="body",action="refused"}'), 1)
  t.equal(await metric(gw.url, 'mcp_gateway_refused_total{upstream="demo",code="MCP_GW_BODY_TOO_LARGE",status="413"}'), 1)
})

t.test('bad result limits are refused, naming the option', async (t) => {
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:9/mcp', resultLimits: { tools: { echo: 10 } } }), /resultLimits\.tools\.echo/)
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:9/mcp', resultLimits: { action: 'cut' as 'error' } }), /must be "truncate" or "error"/)
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:9/mcp', resultLimits: { max: 10 } as never }), /resultLimits/)
})
