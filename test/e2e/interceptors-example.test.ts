/** The interceptors example, as a user would run it: each of the three ways works. */
import t from 'tap'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { buildApp } from '../../examples/interceptors/app.ts'
import { client, textOf, upstream } from '../helpers/peers.ts'

t.test('rules, a plugin and the route, together', async (t) => {
  const up = await upstream(t)
  const app = await buildApp(up.url)
  t.teardown(() => app.close())
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/mcp`
  const { client: c, transport } = await client(t, url)
  t.same((await c.listTools()).tools.map((tool) => tool.name).sort(), ['add', 'echo'])
  t.equal(textOf(await c.callTool({ name: 'weather', arguments: {} })), 'sunny')
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'write to ann@example.com' } })), 'write to [email]')
  t.equal(textOf(await c.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3')
  await t.rejects(c.callTool({ name: 'add', arguments: { a: 1000, b: 2 } }), McpError)
  t.equal(textOf(await c.callTool({ name: 'whoami', arguments: {} })), `session ${transport.sessionId as string}`)
  await c.close()
})
