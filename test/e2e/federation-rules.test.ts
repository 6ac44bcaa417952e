/**
 * Interceptors and auth behind a virtual server: tool globs match the exposed name, or a member's
 * own (`<member upstream>/<its name>`); a rule's `upstreams` may name the member.
 */
import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { gateway, textOf, upstream } from '../helpers/peers.ts'

const KEYS = [
  { name: 'alice', key: 'alice-key-0123456789abcdef' },
  { name: 'bob', key: 'bob-key-0123456789abcdef' }
]

async function connect (t: { teardown (fn: () => unknown): void }, url: string, key: string): Promise<Client> {
  const client = new Client({ name: 'fed-rules', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${key}` } } }))
  t.teardown(() => client.close())
  return client
}

const failure = async (call: Promise<unknown>): Promise<string> => await call.then(() => 'answered', (err: Error) => err.message)

t.test('auth tool rules and interceptor rules see the member behind a virtual server', async (t) => {
  const a = await upstream(t)
  const b = await upstream(t)
  const gw = await gateway(t, {
    upstream: { kind: 'virtual', name: 'ruled', members: [{ namespace: 'a', upstream: { name: 'alpha', url: a.url } }, { namespace: 'b', upstream: { name: 'beta', url: b.url } }] },
    auth: {
      apiKeys: { keys: KEYS },
      tools: [
        // alice: every tool of member beta, by its own names, and alpha's echo by its exposed name.
        { principals: ['alice'], tools: ['beta/*', 'a_echo'] },
        // bob: member alpha's tools only (the rule names the member, the glob its own names).
        { principals: ['bob'], upstreams: ['alpha'], tools: ['*'] }
      ]
    },
    interceptors: { rules: [{ block: { tool: 'beta/add', reason: 'no sums on beta' } }] }
  })

  const alice = await connect(t, gw.url, KEYS[0]?.key as string)
  const aliceTools = (await alice.listTools()).tools.map((tool) => tool.name).sort()
  t.ok(aliceTools.includes('a_echo') && aliceTools.includes('b_echo') && aliceTools.includes('b_grow'), 'alice sees beta\'s tools and a_echo')
  t.notOk(aliceTools.includes('a_add'), 'and not the rest of alpha\'s')
  t.equal(textOf(await alice.callTool({ name: 'b_echo', arguments: { text: 'hi' } })), 'hi', 'a call a member-form rule grants')
  t.match(await failure(alice.callTool({ name: 'a_add', arguments: { a: 1, b: 2 } })), /not available to you/, 'a call no rule grants is blocked')
  t.match(await failure(alice.callTool({ name: 'b_add', arguments: { a: 1, b: 2 } })), /no sums on beta/, 'an interceptor rule by the member\'s own name')

  const bob = await connect(t, gw.url, KEYS[1]?.key as string)
  const bobTools = (await bob.listTools()).tools.map((tool) => tool.name)
  t.ok(bobTools.length > 0 && bobTools.every((name) => name.startsWith('a_')), 'bob sees only member alpha\'s tools')
  t.match(await failure(bob.callTool({ name: 'b_echo', arguments: { text: 'x' } })), /not available to you/)
  t.equal(textOf(await bob.callTool({ name: 'a_add', arguments: { a: 1, b: 2 } })), '3')
  t.equal(b.record.requests.filter((request) => (request.body as { method?: string } | undefined)?.method === 'tools/call' && JSON.stringify(request.body).includes('"add"')).length, 0, 'a blocked call never reached its member')
})
