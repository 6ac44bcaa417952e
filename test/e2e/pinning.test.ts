/**
 * Tool pinning end to end: a real SDK upstream whose `weather` tool changes its description and
 * schema after the first list (rug-pull.ts). With `mode: 'pinned'` clients keep seeing the pinned
 * definition, with `hide` the tool is gone and its calls refused, until an operator approves;
 * `newTools: 'approve'` holds tools that appear later. The audit log records each step; behind a
 * virtual server a tool is pinned under its member; on Redis two instances share the pins.
 */
import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { client, gateway, textOf } from '../helpers/peers.ts'
import { HONEST, PULLED, rugPullUpstream } from '../helpers/rug-pull.ts'
import { redisClient, skipWithoutRedis, REDIS_URL } from '../helpers/redis.ts'

type Tool = { name: string, description?: string, inputSchema?: { properties?: Record<string, unknown> } }
const tool = (list: { tools: Tool[] }, name: string): Tool | undefined => list.tools.find((entry) => entry.name === name)
const refusal = async (call: Promise<unknown>): Promise<{ code?: number, message?: string, data?: unknown } | 'answered'> => await call.then(() => 'answered' as const, (err: { code?: number }) => err)

t.test('mode pinned: the pinned definition is served until the change is approved; the audit log says each step', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pins-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const up = await rugPullUpstream(t)
  const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, pinning: {}, audit: { file: { path: join(dir, 'audit.jsonl') } } })
  const { client: c } = await client(t, gw.url)
  t.equal(tool(await c.listTools(), 'weather')?.description, HONEST, 'first sight: pinned as it is')
  t.same(await gw.app.mcpPins.pending(), [], 'nothing waits')

  up.pull()
  const after = tool(await c.listTools(), 'weather')
  t.equal(after?.description, HONEST, 'the changed description is not served')
  t.notOk('notes' in (after?.inputSchema?.properties ?? {}), 'nor its changed schema')
  t.equal(textOf(await c.callTool({ name: 'weather', arguments: { city: 'Oslo' } })), 'sunny in Oslo', 'calls go on in pinned mode')
  const [pending] = await gw.app.mcpPins.pending()
  t.match(pending, { upstream: 'demo', tool: 'weather', kind: 'changed', pinned: { definition: { description: HONEST } }, proposed: { definition: { description: PULLED } } })
  t.same(pending?.diff.map((change) => change.field), ['description', 'inputSchema'], 'the diff names what changed')
  await c.listTools()
  t.equal((await gw.app.mcpPins.pending()).length, 1, 'a change seen twice waits once')
  t.equal(gw.app.mcpPins.counts.changed, 1)
  const metrics = await (await fetch(gw.url.replace('/mcp', '/metrics'))).text()
  t.match(metrics, /mcp_gateway_pin_changes_total\{kind="changed"\} 1/)
  t.match(metrics, /mcp_gateway_pins_pending 1/)

  t.equal(await gw.app.mcpPins.approve('demo', 'weather', 'ops', 'sha256:not-what-was-shown'), undefined, 'an approval must name the hash shown')
  t.ok(await gw.app.mcpPins.approve('demo', 'weather', 'ops', pending?.proposed.hash))
  t.equal(tool(await c.listTools(), 'weather')?.description, PULLED, 'approved: served')
  t.same(await gw.app.mcpPins.pending(), [])

  await gw.app.mcpAudit.flush()
  const records = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  const pins = records.filter((record) => record.type === 'pin' && record.tool === 'weather')
  t.match(pins, [{ change: 'pinned', upstream: 'demo' }, { change: 'changed', hash: pending?.proposed.hash, previous: pending?.pinned?.hash }, { change: 'approved', approver: 'ops', hash: pending?.proposed.hash }])
})

t.test('mode hide: a changed tool leaves the list and its calls are refused until approved', async (t) => {
  const up = await rugPullUpstream(t)
  const gw = await gateway(t, { upstream: { name: 'demo', url: up.url }, pinning: { mode: 'hide' } })
  const { client: c } = await client(t, gw.url)
  t.ok(tool(await c.listTools(), 'weather'))
  up.pull()
  t.notOk(tool(await c.listTools(), 'weather'), 'hidden')
  t.ok(tool(await c.listTools(), 'echo'), 'the others stay')
  t.match(await refusal(c.callTool({ name: 'weather', arguments: { city: 'Oslo' } })), { code: -32055, message: /changed its definition since it was approved/, data: { pin: 'changed', upstream: 'demo', tool: 'weather' } })
  const [pending] = await gw.app.mcpPins.pending()
  await gw.app.mcpPins.approve('demo', 'weather', 'ops', pending?.proposed.hash)
  t.equal(tool(await c.listTools(), 'weather')?.description, PULLED)
  t.equal(textOf(await c.callTool({ name: 'weather', arguments: { city: 'Oslo' } })), 'sunny in Oslo')
})

t.test('newTools approve: a tool that appears later is held; behind a virtual server, pinned under its member', async (t) => {
  const up = await rugPullUpstream(t)
  const gw = await gateway(t, {
    upstreams: [{ name: 'suite', kind: 'virtual', path: '/mcp', members: [{ namespace: 'demo', upstream: { name: 'demo', url: up.url } }] }],
    pinning: { newTools: 'approve', baselineMs: 0 }
  })
  const { client: c } = await client(t, gw.url)
  t.ok(tool(await c.listTools(), 'demo_weather'), 'the first list is the baseline')
  await c.callTool({ name: 'demo_grow', arguments: { name: 'late' } })
  t.notOk(tool(await c.listTools(), 'demo_late'), 'a later tool is held')
  t.match(await refusal(c.callTool({ name: 'demo_late', arguments: {} })), { code: -32055, data: { pin: 'new', upstream: 'demo', tool: 'late' } })
  const [pending] = await gw.app.mcpPins.pending()
  t.match(pending, { upstream: 'demo', tool: 'late', kind: 'new', pinned: null, diff: [{ field: 'name', before: null, after: 'late' }, { field: 'description' }] })
  up.pull()
  t.equal(tool(await c.listTools(), 'demo_weather')?.description, HONEST, 'the member tool is pinned under demo/weather')
  t.ok((await gw.app.mcpPins.pending()).some((entry) => entry.tool === 'weather' && entry.upstream === 'demo'))
  await gw.app.mcpPins.approve('demo', 'late', 'ops')
  t.ok(tool(await c.listTools(), 'demo_late'), 'approved: listed')
  t.equal(textOf(await c.callTool({ name: 'demo_late', arguments: {} })), 'late')
})

t.test('two instances on Redis share the pins: a change seen by one is approved on the other', { skip: await skipWithoutRedis() }, async (t) => {
  const { prefix } = await redisClient(t)
  const up = await rugPullUpstream(t)
  const options = { upstream: { name: 'demo', url: up.url }, pinning: { mode: 'hide' as const }, store: { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix } }
  const a = await gateway(t, options)
  const b = await gateway(t, options)
  const { client: ca } = await client(t, a.url)
  const { client: cb } = await client(t, b.url)
  await ca.listTools()
  up.pull()
  t.notOk(tool(await ca.listTools(), 'weather'), 'a: hidden')
  const [pending] = await b.app.mcpPins.pending()
  t.match(pending, { upstream: 'demo', tool: 'weather', kind: 'changed' }, 'b sees what a saw')
  t.notOk(tool(await cb.listTools(), 'weather'), 'b: pinned by a, so hidden on b too')
  await b.app.mcpPins.approve('demo', 'weather', 'ops', pending?.proposed.hash)
  t.equal(tool(await ca.listTools(), 'weather')?.description, PULLED, 'approved on b, served by a')
  t.equal(textOf(await ca.callTool({ name: 'weather', arguments: { city: 'Rome' } })), 'sunny in Rome', 'and a lets its calls through again')
})
