/** Log lines about a message carry its session id and JSON-RPC method, and never its body at info. */
import t from 'tap'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import mcpGateway from '../../plugins/index.ts'
import { upstream } from '../helpers/peers.ts'
import { openSession, postHeaders } from '../helpers/http.ts'

t.test('structured, request-scoped logs', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line))
      callback()
    }
  })
  const up = await upstream(t)
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(mcpGateway, { upstream: up.url })
  t.teardown(() => app.close())
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/mcp`
  const sessionId = await openSession(url)
  const secret = 'very-secret-argument'
  const res = await fetch(url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: secret } } }) })
  await res.text()
  const refused = await fetch(url, { method: 'POST', headers: postHeaders({ 'mcp-session-id': sessionId }), body: '[{"jsonrpc":"2.0","id":1,"method":"ping"}]' })
  await refused.text()

  const opened = lines.find((l) => l.msg === 'session opened')
  t.equal(opened?.sessionId, sessionId)
  const completed = lines.filter((l) => l.msg === 'request completed' && l.sessionId === sessionId)
  t.ok(completed.some((l) => l.method === 'tools/call'), 'the completion line names the session and method')
  const refusal = lines.find((l) => l.msg === 'MCP request refused')
  t.match(refusal, { sessionId, method: 'batch', code: 'MCP_GW_BATCH_NOT_SUPPORTED', status: 400 })
  t.notOk(lines.some((l) => JSON.stringify(l).includes(secret)), 'no message body at info level')
})
