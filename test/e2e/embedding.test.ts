import t from 'tap'
import { buildApp } from '../../examples/embedding/app.ts'
import { client, textOf, upstream } from '../helpers/peers.ts'

t.test('the gateway inside an existing app: both serve', async (t) => {
  const up = await upstream(t)
  const app = await buildApp(up.url)
  t.teardown(() => app.close())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })

  const { client: c } = await client(t, `${address}/mcp`)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'via app' } })), 'via app')

  const hello = await fetch(`${address}/api/hello`)
  t.same(await hello.json(), { hello: 'world' })
  // The app's JSON parser is untouched by the gateway's: any JSON body is fine here.
  const echo = await fetch(`${address}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not":"jsonrpc"}' })
  t.same(await echo.json(), { youSent: { not: 'jsonrpc' } })
  const live = await fetch(`${address}/api/mcp-sessions`)
  t.same(await live.json(), { live: 1 })
})
