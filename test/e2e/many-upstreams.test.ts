/**
 * One gateway, three upstreams of three kinds, each on its own path, from the CLI's config file
 * alone: a stdio server, a legacy HTTP+SSE server and a Streamable HTTP server.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startCli } from '../helpers/cli.ts'
import { upstream } from '../helpers/peers.ts'
import { stdioUpstream } from '../helpers/stdio.ts'
import { startLegacySseServer } from '../../examples/legacy-sse-server/server.ts'

t.test('three upstreams of three kinds behind one CLI gateway', async (t) => {
  const http = await upstream(t)
  const legacy = await startLegacySseServer()
  t.teardown(() => legacy.close())
  const dir = mkdtempSync(join(tmpdir(), 'mcp-gw-'))
  const config = join(dir, 'gateway.json')
  const stdio = stdioUpstream()
  writeFileSync(config, JSON.stringify({
    port: 0,
    logLevel: 'warn',
    upstreams: [
      { name: 'local', kind: 'stdio', command: stdio.command, args: stdio.args, env: { DEMO_TOKEN: '${STDIO_SECRET}' } },
      { name: 'old', kind: 'sse', url: legacy.url },
      { name: 'main', path: '/main', url: http.url, headers: { authorization: 'Bearer ${UPSTREAM_TOKEN}' } }
    ]
  }))
  const cli = await startCli(['--config', config], { STDIO_SECRET: 's3cret', UPSTREAM_TOKEN: 'from-env' })
  t.teardown(() => { cli.child.kill('SIGKILL') })
  const base = new URL(cli.endpoint).origin
  t.match(cli.output(), /\/mcp\/local \(upstream local\)/)
  t.match(cli.output(), /\/main \(upstream main\)/)

  const connect = async (path: string, headers: Record<string, string> = {}): Promise<{ client: Client, transport: StreamableHTTPClientTransport }> => {
    const transport = new StreamableHTTPClientTransport(new URL(path, base), { requestInit: { headers } })
    const client = new Client({ name: 'multi', version: '1.0.0' })
    await client.connect(transport)
    t.teardown(() => client.close())
    return { client, transport }
  }
  const local = await connect('/mcp/local')
  const old = await connect('/mcp/old')
  const main = await connect('/main', { authorization: 'Bearer client-token' })
  for (const { client } of [local, old, main]) {
    t.same((await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } })).structuredContent, { sum: 42 })
  }
  t.ok((await local.client.listTools()).tools.some((tool) => tool.name === 'whoami'), 'the stdio upstream has its own tools')
  t.notOk((await main.client.listTools()).tools.some((tool) => tool.name === 'whoami'))

  const seen = http.record.requests.map((request) => request.headers.authorization)
  t.ok(seen.length > 0 && seen.every((value) => value === 'Bearer from-env'), 'the upstream gets the gateway\'s credential from the environment, never the client\'s')

  // A session belongs to its endpoint: another upstream's endpoint does not know it.
  const res = await fetch(new URL('/mcp/old', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': main.transport.sessionId as string, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  })
  t.equal(res.status, 404)

  const health = await (await fetch(new URL('/readyz', base))).json() as { checks: Record<string, { ok: boolean }> }
  t.same(Object.keys(health.checks).filter((key) => key.startsWith('upstream:')).sort(), ['upstream:local', 'upstream:main', 'upstream:old'])
})

t.test('an unset ${VAR} in the config refuses to start, naming it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-gw-'))
  const config = join(dir, 'gateway.json')
  writeFileSync(config, JSON.stringify({ port: 0, upstreams: [{ name: 'a', url: 'http://127.0.0.1:1/mcp', headers: { authorization: 'Bearer ${NOT_SET_ANYWHERE}' } }] }))
  const err = await startCli(['--config', config]).then(() => undefined, (e: unknown) => e as Error)
  t.match(err?.message, /upstreams\[0\]\.headers\.authorization.*NOT_SET_ANYWHERE/)
})
