import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { gateway, upstream } from '../helpers/peers.ts'

t.test('liveness and readiness', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  const base = gw.url.replace(/\/mcp$/, '')
  const live = await fetch(`${base}/healthz`)
  t.equal(live.status, 200)
  t.same(await live.json(), { status: 'ok' })
  const ready = await fetch(`${base}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready', checks: { sessionStore: 'ok', 'upstream:default': 'ok' } })
})

t.test('not ready when the upstream cannot be reached; paths are configurable', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  const gw = await gateway(t, { upstream: { name: 'gone', url: `http://127.0.0.1:${port}/mcp` }, health: { readinessPath: '/ready', livenessPath: '/live', timeoutMs: 500 } })
  const base = gw.url.replace(/\/mcp$/, '')
  t.equal((await fetch(`${base}/live`)).status, 200)
  const ready = await fetch(`${base}/ready`)
  t.equal(ready.status, 503)
  const body = await ready.json() as { status: string, checks: Record<string, string> }
  t.equal(body.status, 'not ready')
  t.equal(body.checks.sessionStore, 'ok')
  t.match(body.checks['upstream:gone'], /unavailable/)
})

t.test('a hanging check times out', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, health: { timeoutMs: 50 } }, (app) => {
    app.addHook('onReady', async () => {
      app.mcpSessions.count = () => new Promise(() => {})
    })
  })
  const ready = await fetch(gw.url.replace(/\/mcp$/, '/readyz'))
  t.equal(ready.status, 503)
  t.match(((await ready.json()) as { checks: Record<string, string> }).checks.sessionStore, /did not answer within 50 ms/)
})
