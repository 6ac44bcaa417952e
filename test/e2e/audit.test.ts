/**
 * The audit log end to end, with real peers: SDK 1.x (2025) and 2.x (2026-07-28) clients with API
 * keys, raw WebSocket frames, the demo upstream over HTTP and server-everything over stdio behind a
 * virtual server. One record per tools/call, resources/read and prompts/get and per request the
 * policy denies, with who, where, the decision and rule, and how it ended; the file's chain checked
 * by the CLI's `audit verify`, which finds an edited and a deleted record; a full disk (/dev/full)
 * never holds a call.
 */
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { upstreamProcess } from '../helpers/upstream-process.ts'
import { modernClient } from '../helpers/eras.ts'
import { everythingStdio } from '../helpers/published-servers.ts'
import { wsFrames } from '../helpers/ws-frames.ts'
import { initializeBody, postHeaders } from '../helpers/http.ts'
import { auditCommand } from '../../examples/gateway/audit-command.ts'
import type { AuditRecord } from '../../lib/audit/record.ts'

const KEYS = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }, { name: 'bob', key: 'bob-key-0123456789abcdef' }]
const RULES = [
  { name: 'no-big-sums', effect: 'deny' as const, when: 'tool.name == "add" && arguments.a > 100.0', message: 'sums over 100 are not allowed' },
  { name: 'no-templates-for-bob', effect: 'deny' as const, when: 'method == "resources/templates/list" && principal.id == "bob"' }
]

async function folder (t: Test): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'audit-e2e-'))
  t.teardown(() => rm(path, { recursive: true, force: true }))
  return path
}

async function connect (t: Test, url: string, key: string): Promise<Client> {
  const client = new Client({ name: 'audit-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${key}` } } }))
  t.teardown(() => client.close())
  return client
}

type Sealed = AuditRecord & { seq: number, prev: string }
async function records (path: string): Promise<Sealed[]> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Sealed)
}

async function verify (...args: string[]): Promise<{ code: number, out: string }> {
  const out = new PassThrough()
  let text = ''
  out.on('data', (chunk: Buffer) => { text += String(chunk) })
  const code = await auditCommand(['verify', ...args], out)
  return { code, out: text }
}

t.test('calls, denials and timeouts in both eras: who, what, the decision and the outcome', async (t) => {
  const dir = await folder(t)
  const path = join(dir, 'audit.jsonl')
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstream: { url: up.url, toolTimeouts: { wait: 300 } },
    auth: { apiKeys: { keys: KEYS } },
    policy: { rules: RULES },
    audit: { file: { path }, arguments: 'redacted' }
  })
  const alice = await connect(t, gw.url, KEYS[0]?.key as string)
  const bob = await connect(t, gw.url, KEYS[1]?.key as string)
  const modern = await modernClient(t, gw.url, { headers: { authorization: `Bearer ${KEYS[1]?.key as string}` } })

  t.equal(textOf(await alice.callTool({ name: 'add', arguments: { a: 1, b: 2, apiToken: 'hunter2' } })), '3')
  await t.rejects(alice.callTool({ name: 'add', arguments: { a: 101, b: 2 } }), { code: -32055 })
  await t.rejects(alice.callTool({ name: 'wait', arguments: { ms: 5000 } }), { code: -32061 })
  t.equal(textOf(await modern.callTool({ name: 'echo', arguments: { text: 'from 2026' } })), 'from 2026')
  await t.rejects(bob.listResourceTemplates(), { code: -32055 })
  await alice.listTools()
  await gw.app.mcpAudit.flush()

  const all = await records(path)
  t.equal(all.length, 5, 'four calls and one denied list; the allowed list is not recorded')
  const [ok, denied, timeout, modernCall, list] = all as [Sealed, Sealed, Sealed, Sealed, Sealed]
  t.match(ok, { seq: 1, type: 'request', method: 'tools/call', principal: 'alice', upstream: String, tool: 'add', decision: 'allow', rule: '(default)', outcome: 'ok', approval: null, approver: null })
  t.type(ok.session, 'string', 'the 2025 session')
  t.same(ok.arguments, { a: 1, b: 2, apiToken: '[redacted]' }, 'arguments kept with secrets hidden')
  t.match(ok.argumentsDigest, /^sha256:[0-9a-f]{64}$/)
  t.notOk(JSON.stringify(all).includes('hunter2'), 'the secret is nowhere in the file')
  t.match(denied, { tool: 'add', decision: 'deny', rule: 'no-big-sums', outcome: 'denied', error: { code: -32055, message: /sums over 100/ } })
  t.match(timeout, { tool: 'wait', outcome: 'timeout', error: { code: -32061 } })
  t.ok((timeout.durationMs as number) >= 250, `the timeout took its time (${String(timeout.durationMs)} ms)`)
  t.match(modernCall, { principal: 'bob', session: null, tool: 'echo', outcome: 'ok' }, 'a 2026 request has no session')
  t.match(list, { method: 'resources/templates/list', principal: 'bob', decision: 'deny', rule: 'no-templates-for-bob', outcome: 'denied' })

  t.match(await verify(path), { code: 0, out: /ok: 5 records in 1 file\(s\), records 1 to 5/ })
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean)
  await writeFile(path, lines.map((line, i) => i === 1 ? line.replace('"deny"', '"allow"') : line).join('\n') + '\n')
  t.match(await verify(path), { code: 2, out: /audit\.jsonl:3: does not chain to record 2/ }, 'an edited record is found')
  await writeFile(path, lines.filter((_, i) => i !== 2).join('\n') + '\n')
  t.match(await verify(path), { code: 2, out: /audit\.jsonl:3: record 3 is missing/ }, 'a deleted record is found')
})

t.test('a virtual server over WebSocket: members named, reads and prompts recorded', async (t) => {
  const dir = await folder(t)
  const path = join(dir, 'audit.jsonl')
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstreams: [{ name: 'suite', kind: 'virtual', path: '/mcp', members: [{ namespace: 'every', upstream: everythingStdio('everything') }, { namespace: 'demo', upstream: { name: 'demo', url: up.url } }] }],
    websocket: true,
    audit: { file: { path } }
  })
  const { socket, next } = await wsFrames(t, gw.url)
  // Notifications (a member's list changes, logging) may come between answers.
  const answer = async (id: number): Promise<{ id?: unknown, result?: unknown, error?: { code: number } }> => {
    for (let i = 0; i < 50; i++) {
      const frame = await next()
      if (frame.id === id) return frame
    }
    throw new Error(`no answer to ${id}`)
  }
  socket.send(initializeBody())
  t.ok((await next()).result, 'initialized over WebSocket')
  socket.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
  socket.send('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo_add","arguments":{"a":1,"b":2}}}')
  t.match(await answer(2), { id: 2, result: {} })
  socket.send('{"jsonrpc":"2.0","id":3,"method":"resources/list"}')
  const resources = (await answer(3)).result as { resources: Array<{ uri: string }> }
  const uri = resources.resources[0]?.uri as string
  socket.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri } }))
  t.match(await answer(4), { id: 4, result: { contents: Array } })
  socket.send('{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"every_simple-prompt"}}')
  const prompt = await answer(5)
  socket.send('{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}')
  t.match(await answer(6), { id: 6 })
  await gw.app.mcpAudit.flush()

  const all = await records(path)
  t.equal(all.length, 4)
  const [call, read, get, unknown] = all as [Sealed, Sealed, Sealed, Sealed]
  t.match(call, { method: 'tools/call', upstream: 'suite', tool: 'demo_add', member: { upstream: 'demo', name: 'add' }, principal: null, decision: null, rule: null, outcome: 'ok' })
  t.notOk('arguments' in call, 'digest mode keeps only the digest')
  t.match(read, { method: 'resources/read', resource: uri, outcome: 'ok' })
  t.match(get, { method: 'prompts/get', prompt: 'every_simple-prompt', outcome: prompt.error === undefined ? 'ok' : 'error' })
  t.match(get, { member: { upstream: 'everything', name: 'simple-prompt' } })
  t.match(unknown, { tool: 'no_such_tool', outcome: 'error', error: { code: -32602 } })
  t.match(await verify(path), { code: 0 })
})

t.test('an upstream killed mid-call: logged and relayed streams record the client\'s error', async (t) => {
  const dir = await folder(t)
  const doomed = await upstreamProcess(t)
  const logged = await gateway(t, { upstream: doomed.url, audit: { file: { path: join(dir, 'logged.jsonl') } } })
  const relayed = await gateway(t, { upstream: doomed.url, streaming: false, audit: { file: { path: join(dir, 'relayed.jsonl') } } })
  const progress = [0, 0]
  const calls = await Promise.all([logged, relayed].map(async (gw, i) => {
    const client = new Client({ name: 'audit-crash', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
    t.teardown(() => client.close())
    // Wrapped: an async function returning the call's promise would make Promise.all wait for it.
    return { call: client.callTool({ name: 'countdown', arguments: { from: 1000, delayMs: 20 } }, CallToolResultSchema, { onprogress: () => { progress[i] = (progress[i] ?? 0) + 1 } }).then(() => undefined, (err: { code: number }) => err.code) }
  }))
  // Both calls are streaming from the upstream when it dies.
  await eventually(() => progress.every((n) => n >= 2))
  doomed.child.kill('SIGKILL')
  const codes = await Promise.all(calls.map(({ call }) => call))
  // And a 2026 call after it died: refused before any answer.
  const res = await fetch(relayed.url, {
    method: 'POST',
    headers: { ...postHeaders(), 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } })
  })
  const refused = await res.json() as { error?: { code: number } }
  t.ok(res.status >= 500, `refused with HTTP ${res.status}`)
  for (const [gw, name] of [[logged, 'logged'], [relayed, 'relayed']] as const) {
    await gw.app.mcpAudit.flush()
    const [record, late] = await records(join(dir, `${name}.jsonl`))
    if (name === 'relayed') t.match(late, { tool: 'echo', session: null, outcome: 'failed', error: { code: refused.error?.code } }, `the refused call: failed (${String(refused.error?.code)})`)
    t.match(record, { tool: 'countdown', outcome: 'failed', error: { code: codes[name === 'logged' ? 0 : 1] } }, `${name}: failed, with the code the client got (${String(codes[name === 'logged' ? 0 : 1])})`)
  }
})

t.test('a full disk (/dev/full) never holds a call; the loss is counted and in metrics', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, audit: { file: { path: '/dev/full' } } })
  const client = new Client({ name: 'audit-full', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
  t.teardown(() => client.close())
  const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => textOf(await client.callTool({ name: 'add', arguments: { a: i, b: 1 } }))))
  t.same(results, Array.from({ length: 50 }, (_, i) => String(i + 1)), 'every call answered')
  await gw.app.mcpAudit.flush()
  t.equal(gw.app.mcpAudit.failed, 50)
  t.equal(gw.app.mcpAudit.written, 0)
  const metrics = await (await fetch(gw.url.replace('/mcp', '/metrics'))).text()
  t.match(metrics, /mcp_gateway_audit_records_total\{result="failed"\} 50/)
})

t.test('options are checked at start', async (t) => {
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:1/mcp', audit: {} }), /needs a "file", or "log": true/)
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:1/mcp', audit: { log: true, bogus: 1 } as never }), /audit/)
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:1/mcp', audit: { file: { path: '/x', maxBytes: 10 } } }), /audit\.file\.maxBytes/)
  await t.rejects(gateway(t, { upstream: 'http://127.0.0.1:1/mcp', audit: { file: { path: '/proc/audit.jsonl' } } }), /audit\.file\.path.*cannot be opened/)
})
