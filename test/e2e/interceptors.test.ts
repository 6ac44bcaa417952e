/**
 * Interceptors with the real SDK client and server, in both upstream response modes: rules from a
 * config file (hide, block, rewrite, redact, mock, delay), route hooks and route interceptors, the
 * programmatic chain on the GET stream and POST streams, and the error policies.
 */
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js'
import { createGateway } from '../../examples/gateway/create-gateway.ts'
import { readConfigFile } from '../../examples/gateway/config.ts'
import type { JsonRpcRequest } from '../../lib/jsonrpc.ts'
import { MODES, client, eventually, gateway, progressIn, textOf, upstream } from '../helpers/peers.ts'
import { openSession, postHeaders } from '../helpers/http.ts'

async function rejectsWith (t: Test, promise: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  try {
    await promise
    t.fail('expected a JSON-RPC error')
  } catch (err) {
    t.ok(err instanceof McpError, 'a JSON-RPC error')
    t.equal((err as McpError).code, code)
    t.match((err as McpError).message, message)
  }
}

for (const mode of MODES) {
  t.test(mode.name, async (t) => {
    const up = await upstream(t, { jsonResponse: mode.jsonResponse })
    const calls = (name: string): number => up.record.requests.filter((r) => (r.body as JsonRpcRequest | undefined)?.method === 'tools/call' && (r.body as JsonRpcRequest).params?.name === name).length

    t.test('rules from a config file: hide, block, rewrite, redact, mock, delay', async (t) => {
      const file = `${t.testdir({})}/gateway.json`
      await writeFile(file, JSON.stringify({
        upstream: up.url,
        logLevel: false,
        interceptors: {
          rules: [
            { mock: { tool: 'weather', result: { content: [{ type: 'text', text: 'sunny' }] } } },
            { allowTools: ['echo', 'add', 'weather'] },
            { block: { tool: 'add', reason: 'no sums today' } },
            { rewrite: { tool: 'echo', arguments: { text: 'rewritten' } } },
            { redact: { tool: 'echo', fields: ['content.*.text'], with: '***' } },
            { delay: { ms: 150, method: 'tools/list' } }
          ]
        }
      }))
      const app = await createGateway(await readConfigFile(file) as never)
      t.teardown(() => app.close())
      const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/mcp`
      const { client: c } = await client(t, url)

      const started = Date.now()
      const { tools } = await c.listTools()
      t.ok(Date.now() - started >= 150, 'tools/list was delayed')
      t.same(tools.map((tool) => tool.name).sort(), ['add', 'echo'], 'hidden tools are not listed; the list stays valid MCP')
      await rejectsWith(t, c.callTool({ name: 'countdown', arguments: { from: 1 } }), -32055, /not available/)
      t.equal(calls('countdown'), 0, 'a hidden tool is never called upstream')
      await rejectsWith(t, c.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), -32055, /no sums today/)
      t.equal(calls('add'), 0)
      t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'original' } })), '***', 'arguments rewritten, then the result redacted')
      const echoed = up.record.requests.find((r) => (r.body as JsonRpcRequest | undefined)?.params?.name === 'echo')
      t.same(((echoed?.body as JsonRpcRequest).params as { arguments: unknown }).arguments, { text: 'rewritten' }, 'the upstream got the rewritten arguments')
      t.equal(textOf(await c.callTool({ name: 'weather', arguments: {} })), 'sunny', 'a mocked tool answers')
      t.equal(calls('weather'), 0, 'without the upstream')
      await c.close()
      const metrics = await (await fetch(new URL('/metrics', url))).text()
      t.match(metrics, /mcp_gateway_interceptor_actions_total\{action="block"\} 2/, 'blocks counted')
      t.match(metrics, /mcp_gateway_interceptor_actions_total\{action="respond"\} 1/, 'mocks counted')

      // A 2025-03-26 batch: the mocked request's answer travels with the upstream's answers.
      const sessionId = await openSession(url, '2025-03-26')
      const res = await fetch(url, {
        method: 'POST',
        headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-03-26' }),
        body: JSON.stringify([
          { jsonrpc: '2.0', id: 'm', method: 'tools/call', params: { name: 'weather', arguments: {} } },
          { jsonrpc: '2.0', id: 'u', method: 'tools/call', params: { name: 'echo', arguments: { text: 'batched' } } }
        ])
      })
      t.equal(res.status, 200)
      const text = await res.text()
      t.match(text, /"id":"m","result":\{"content":\[\{"type":"text","text":"sunny"/, 'the mocked answer')
      t.match(text, /"id":"u"/, 'the upstream\'s answer')
    })

    t.test('route hooks and route interceptors', async (t) => {
      const gw = await gateway(t, {
        upstream: up.url,
        route: {
          interceptors: [{ name: 'no-add', match: { tool: 'add', direction: 'client_to_upstream' }, handler: () => ({ action: 'block', reason: 'route says no' }) }],
          preHandler: async (request, reply) => {
            const messages = request.mcpMessages
            if (messages === null || request.method !== 'POST') return
            const first = messages[0] as JsonRpcRequest
            if (first.method !== 'tools/call') return
            if (first.params?.name === 'local') {
              return reply.send({ jsonrpc: '2.0', id: first.id, result: { content: [{ type: 'text', text: 'answered by a route hook' }] } })
            }
            if (first.params?.name === 'echo') {
              request.mcpMessages = [{ ...first, params: { ...first.params, arguments: { text: 'from the hook' } } }]
            }
          }
        }
      })
      const { client: c } = await client(t, gw.url)
      t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'x' } })), 'from the hook')
      t.equal(textOf(await c.callTool({ name: 'local', arguments: {} })), 'answered by a route hook')
      await rejectsWith(t, c.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), -32055, /route says no/)
      await c.close()
    })

    t.test('programmatic: fastify.mcpInterceptors.add() sees messages inside streams', async (t) => {
      const seen: string[] = []
      const gw = await gateway(t, { upstream: up.url }, (app) => {
        app.mcpInterceptors.add({
          name: 'no-progress',
          match: { direction: 'upstream_to_client', kind: 'notification', method: 'notifications/progress' },
          handler: (message) => {
            seen.push((message as { method: string }).method)
            return { action: 'drop' }
          }
        })
      })
      const { client: c } = await client(t, gw.url)
      const progress: number[] = []
      const result = await c.callTool({ name: 'countdown', arguments: { from: 3, delayMs: 1 } }, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress) })
      t.equal(textOf(result), 'liftoff')
      // In JSON mode the reports come on the GET stream, which may trail the answer.
      await eventually(() => seen.length === 3)
      t.equal(seen.length, 3, mode.jsonResponse ? 'on the GET stream' : 'on the POST stream')
      t.same(progress, [], 'progress notifications dropped')
      await c.close()
    })

    t.test('upstream-to-client: block an answer, delay it, modify a notification', async (t) => {
      const gw = await gateway(t, { upstream: up.url }, (app) => {
        app.mcpInterceptors.add({ name: 'hide-sums', match: { direction: 'upstream_to_client', kind: 'response', tool: 'add' }, handler: () => ({ action: 'block', reason: 'answers of add are secret' }) })
        app.mcpInterceptors.add({ name: 'slow-echo', match: { direction: 'upstream_to_client', tool: 'echo' }, handler: async () => ({ action: 'delay', ms: 150 }) })
        app.mcpInterceptors.add({
          name: 'louder-progress',
          match: { direction: 'upstream_to_client', method: 'notifications/progress' },
          handler: (message) => {
            const params = (message as unknown as { params: { progress: number } }).params
            return { action: 'modify', message: { ...message, params: { ...params, progress: params.progress * 10 } } as never }
          }
        })
      })
      const { client: c, received } = await client(t, gw.url)
      await rejectsWith(t, c.callTool({ name: 'add', arguments: { a: 2, b: 2 } }), -32055, /answers of add are secret/)
      t.equal(calls('add') > 0, true, 'the upstream did the work; the client got an error for its id')
      const started = Date.now()
      t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'late' } })), 'late')
      t.ok(Date.now() - started >= 150, 'the answer was held')
      await c.callTool({ name: 'countdown', arguments: { from: 3, delayMs: 1 } }, CallToolResultSchema, { onprogress: () => {} })
      // Counted as delivered: in JSON mode they come on the GET stream, which the SDK may read after the answer.
      await eventually(() => progressIn(received).length === 3)
      t.same(progressIn(received), [10, 20, 30], mode.jsonResponse ? 'changed on the GET stream' : 'changed on the POST stream')
      await c.close()
    })

    t.test('a failing or slow interceptor: fail-closed blocks, fail-open lets through', async (t) => {
      const failing = { name: 'broken', match: { tool: 'echo' }, handler: () => { throw new Error('bug') } }
      const slow = { name: 'slow', match: { tool: 'add' }, timeoutMs: 50, handler: () => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500)) }
      const closed = await gateway(t, { upstream: up.url, interceptors: { interceptors: [failing, slow] } })
      const c1 = (await client(t, closed.url)).client
      await rejectsWith(t, c1.callTool({ name: 'echo', arguments: { text: 'x' } }), -32055, /interceptor failed/)
      await rejectsWith(t, c1.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), -32055, /interceptor failed/)
      const open = await gateway(t, { upstream: up.url, interceptors: { onError: 'open', interceptors: [failing, slow] } })
      const c2 = (await client(t, open.url)).client
      t.equal(textOf(await c2.callTool({ name: 'echo', arguments: { text: 'x' } })), 'x')
      t.equal(textOf(await c2.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2')
      await c1.close()
      await c2.close()
    })
  })
}

t.test('bad rules are refused at start, naming the rule', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [[{ frobnicate: {} }], /rules\[0\]/],
    [[{ block: {} }], /rules\[0\]\.block/],
    [[{ allowTools: 'echo' }], /rules\[0\]\.allowTools/],
    [[{ rewrite: { tool: 'echo', arguments: 3 } }], /rules\[0\]\.rewrite\.arguments/],
    [[{ redact: { fields: [] } }], /rules\[0\]\.redact\.fields/],
    [[{ mock: { tool: 'x', result: 'no' } }], /rules\[0\]\.mock\.result/],
    [[{ delay: { ms: -1 } }], /rules\[0\]\.delay\.ms/]
  ]
  for (const [rules, message] of cases) {
    await t.rejects(createGateway({ upstream: 'http://127.0.0.1:9/mcp', logLevel: false, interceptors: { rules: rules as never } }), message)
  }
})

t.test('a client that leaves while its request is held by a delay: the delay is cancelled, nothing is sent upstream', async (t) => {
  const up = await upstream(t)
  const after: string[] = []
  let held = 0
  const gw = await gateway(t, { upstream: up.url }, (app) => {
    app.mcpInterceptors.add({ name: 'hold', match: { direction: 'client_to_upstream', tool: 'echo' }, handler: () => { held++; return { action: 'delay', ms: 60_000 } } })
    app.mcpInterceptors.add({ name: 'after', match: { direction: 'client_to_upstream', tool: 'echo' }, handler: () => { after.push('ran'); return { action: 'continue' } } })
  })
  const sessionId = await openSession(gw.url)
  const abort = new AbortController()
  const sent = fetch(gw.url, {
    method: 'POST',
    headers: postHeaders({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo', arguments: { text: 'held' } } }),
    signal: abort.signal
  }).catch(() => undefined)
  await eventually(() => held === 1 && gw.app.mcpStreams.answering)
  abort.abort()
  await sent
  // The exchange is over as soon as the client left, not when the minute is up.
  await eventually(() => !gw.app.mcpStreams.answering, 5000)
  t.same(after, [], 'no interceptor after the delay ran')
  t.equal(up.record.requests.filter((r) => JSON.stringify(r.body ?? '').includes('"held"')).length, 0, 'the held request never reached the upstream')
})
