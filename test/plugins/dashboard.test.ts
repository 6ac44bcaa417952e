/** The Grafana dashboard in examples/ only charts series the gateway really exports. */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { client, gateway, upstream } from '../helpers/peers.ts'

t.test('every series the dashboard queries is on /metrics', async (t) => {
  const dashboard = readFileSync(fileURLToPath(new URL('../../examples/grafana/dashboard.json', import.meta.url)), 'utf8')
  const wanted = new Set([...dashboard.matchAll(/\b((?:mcp_gateway|process|nodejs)_[a-z0-9_]+)/g)].map((m) => (m[1] as string).replace(/_bucket$/, '')))
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const { client: c } = await client(t, gw.url)
  await c.callTool({ name: 'echo', arguments: { text: 'x' } })
  const metrics = await (await fetch(new URL('/metrics', gw.url))).text()
  const exported = new Set([...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string))
  t.ok(wanted.size >= 10, `${wanted.size} series charted`)
  for (const name of wanted) t.ok(exported.has(name), name)
})
