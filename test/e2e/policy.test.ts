/**
 * CEL policy end to end, with real peers: the demo upstream over HTTP and server-memory over stdio
 * behind a virtual server, SDK 1.x (2025) and 2.x (2026-07-28) clients and raw WebSocket frames,
 * principals from real signed JWTs. Denials are -32055 naming the rule; lists leave out what the
 * rules deny for every call; the explain command decides as the gateway does.
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { client, gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient } from '../helpers/eras.ts'
import { everythingStdio, memoryStdio } from '../helpers/published-servers.ts'
import { wsFrames } from '../helpers/ws-frames.ts'
import { initializeBody } from '../helpers/http.ts'
import { policyCommand } from '../../examples/gateway/policy-command.ts'

const issuer = 'https://auth.example.com'
const audience = 'https://gateway.example.com/mcp'
const { publicKey, privateKey } = await generateKeyPair('ES256')
const jwk: JWK = { ...await exportJWK(publicKey), kid: 'k1', alg: 'ES256' }
const JWT = { jwks: { keys: [jwk] }, issuer, audience }

async function token (sub: string, claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setIssuer(issuer).setAudience(audience).setSubject(sub).setExpirationTime('10m').sign(privateKey)
}

async function connect (t: { teardown (fn: () => unknown): void }, url: string, bearer: string): Promise<Client> {
  const client = new Client({ name: 'policy-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${bearer}` } } }))
  t.teardown(() => client.close())
  return client
}

interface Refusal { code?: number, message: string, data?: { rule?: string | null, effect?: string } }
const refusal = async (call: Promise<unknown>): Promise<Refusal | 'answered'> => await call.then(() => 'answered' as const, (err: Refusal) => err)
const names = (list: { tools: Array<{ name: string }> }): string[] => list.tools.map((tool) => tool.name).sort()

const RULES = [
  { name: 'no-big-sums', effect: 'deny' as const, when: 'tool.name == "add" && arguments.a > 100.0', message: 'sums over 100 are not allowed' },
  { name: 'math-team-only', effect: 'deny' as const, when: 'tool.name == "add" && principal.claims.?team.orValue("") != "math"' },
  { name: 'no-named-waits', effect: 'deny' as const, when: 'headers[?"mcp-name"].orValue("") == "wait"' },
  { name: 'no-forbidden-param', effect: 'deny' as const, when: 'headers[?"mcp-param-text"].orValue("").startsWith("forbidden")' }
]

t.test('one endpoint: rules on arguments, JWT claims and 2026 headers, over HTTP in both eras and WebSocket', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, auth: { jwt: JWT }, websocket: true, policy: { rules: RULES } })
  const alice = await connect(t, gw.url, await token('alice', { team: 'math' }))
  const bob = await connect(t, gw.url, await token('bob', { team: 'words' }))

  t.equal(textOf(await alice.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3', 'allowed: small sum, math team')
  const big = await refusal(alice.callTool({ name: 'add', arguments: { a: 101, b: 2 } }))
  t.match(big, { code: -32055, message: /sums over 100 are not allowed/, data: { rule: 'no-big-sums', effect: 'deny' } }, 'denied on its arguments, the rule named in data')
  t.match(await refusal(bob.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), { code: -32055, message: /denied by policy rule "math-team-only"/, data: { rule: 'math-team-only' } }, 'denied on a JWT claim')
  t.ok(names(await alice.listTools()).includes('add'), 'a rule on arguments keeps the tool listed')
  t.notOk(names(await bob.listTools()).includes('add'), 'a rule that denies bob every call of add hides it from him')
  t.ok(names(await bob.listTools()).includes('echo'), 'and nothing else')
  const sums = up.record.requests.filter((request) => JSON.stringify(request.body ?? '').includes('"add"') && JSON.stringify(request.body).includes('tools/call'))
  t.equal(sums.length, 1, 'denied calls never reached the upstream')

  // 2026-07-28: stateless, Mcp-Method / Mcp-Name headers on every request.
  const modern = await modernClient(t, gw.url, { headers: { authorization: `Bearer ${await token('alice', { team: 'math' })}` } })
  t.equal(textOf(await modern.callTool({ name: 'echo', arguments: { text: 'new era' } })), 'new era')
  t.match(await refusal(modern.callTool({ name: 'wait', arguments: { ms: 1 } })), { code: -32055, data: { rule: 'no-named-waits' } }, 'a rule on the Mcp-Name header')
  // An Mcp-Param-* header (SEP-2243), as a 2026 client mirrors a tool parameter into one.
  const bearer = `Bearer ${await token('alice', { team: 'math' })}`
  const param = async (value: string): Promise<{ result?: unknown, error?: { code: number, data?: { rule?: string } } }> => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-param-text': value },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: value }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } })
    })
    const text = await res.text()
    return JSON.parse(text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}'))
  }
  t.match(await param('forbidden-thing'), { error: { code: -32055, data: { rule: 'no-forbidden-param' } } }, 'a rule on an Mcp-Param header')
  t.match(await param('fine'), { result: { content: [{ text: 'fine' }] } })
  const modernTools = names(await modern.listTools())
  t.ok(modernTools.includes('echo') && !modernTools.includes('wait'), 'a 2026 list is judged with the Mcp-Name each call would carry: wait is hidden, echo (a rule on its Mcp-Param, unknown to a list) is not')
  t.match(await refusal(modern.callTool({ name: 'add', arguments: { a: 500, b: 1 } })), { code: -32055, data: { rule: 'no-big-sums' } }, 'argument rules hold in the 2026 era too')

})

t.test('WebSocket frames and a virtual server: read-only mode from annotations, for contractors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'policy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstreams: [
      { name: 'suite', kind: 'virtual', path: '/mcp', members: [{ namespace: 'mem', upstream: memoryStdio('memory', join(dir, 'memory.jsonl')) }, { namespace: 'demo', upstream: { name: 'demo', url: up.url } }] }
    ],
    websocket: true,
    policy: {
      rules: [
        { name: 'read-only-contractors', effect: 'deny', when: 'method == "tools/call" && headers[?"x-role"].orValue("") == "contractor" && !tool.annotations.readOnlyHint', message: 'contractors may only read' },
        { name: 'no-big-sums', effect: 'deny', when: 'tool.ownName == "add" && upstream.member == "demo" && arguments.a > 100.0' }
      ]
    }
  })
  const contractor = await modernClientOr2025(t, gw.url, { 'x-role': 'contractor' })
  const staff = await modernClientOr2025(t, gw.url, {})
  const seen = names(await contractor.listTools())
  t.ok(seen.includes('mem_read_graph') && seen.includes('mem_search_nodes'), 'read-only tools are listed')
  t.notOk(seen.includes('mem_create_entities') || seen.includes('demo_add'), 'tools not declared read-only are not (a list request\'s own headers count)')
  t.ok(names(await staff.listTools()).includes('mem_create_entities'), 'staff see every tool')
  t.match(await refusal(contractor.callTool({ name: 'mem_create_entities', arguments: { entities: [] } })), { code: -32055, message: /contractors may only read/, data: { rule: 'read-only-contractors' } })
  t.match(textOf(await contractor.callTool({ name: 'mem_read_graph', arguments: {} })), /entities/, 'a read-only tool is called')
  t.match(await refusal(staff.callTool({ name: 'demo_add', arguments: { a: 200, b: 1 } })), { data: { rule: 'no-big-sums' } }, 'a rule on the member and its own tool name')
  t.equal(textOf(await staff.callTool({ name: 'demo_add', arguments: { a: 2, b: 1 } })), '3')

  const { socket, next } = await wsFrames(t, gw.url)
  socket.send(initializeBody())
  t.ok((await next()).result, 'initialized over WebSocket')
  socket.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
  socket.send('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo_add","arguments":{"a":1000,"b":1}}}')
  t.match(await next(), { id: 7, error: { code: -32055, data: { rule: 'no-big-sums' } } }, 'the same gate on WebSocket frames')
})

async function modernClientOr2025 (t: { teardown (fn: () => unknown): void }, url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'policy-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
  t.teardown(() => client.close())
  return client
}

t.test('the explain command decides as the gateway does, for an allow and a deny', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'policy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = join(dir, 'gateway.json')
  const { writeFile } = await import('node:fs/promises')
  await writeFile(config, JSON.stringify({ upstream: { name: 'db', url: 'http://127.0.0.1:1/mcp' }, policy: { rules: RULES }, auth: { apiKeys: { keys: [{ name: 'k', key: 'k-0123456789abcdef' }] }, tools: [{ principals: ['alice'], tools: ['*'] }] } }))
  const run = async (args: string[]): Promise<{ code: number, text: string }> => {
    let text = ''
    const out = { write: (chunk: string) => { text += chunk; return true } } as unknown as NodeJS.WritableStream
    return { code: await policyCommand(['test', '--config', config, ...args], out), text }
  }
  const allowed = await run(['--request', '{"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}', '--principal', '{"id":"alice","claims":{"team":"math"}}'])
  t.equal(allowed.code, 0)
  t.equal(allowed.text, [
    'decision: allow',
    'decided by: the default (no rule held)',
    'rules:',
    '  deny   auth.tools: false',
    '  deny   no-big-sums: false',
    '  deny   math-team-only: false',
    '  deny   no-named-waits: false',
    '  deny   no-forbidden-param: false',
    ''
  ].join('\n'))
  const denied = await run(['--request', '{"method":"tools/call","params":{"name":"add","arguments":{"a":500,"b":2}}}', '--principal', '{"id":"alice","claims":{"team":"math"}}'])
  t.equal(denied.code, 2)
  t.match(denied.text, /^decision: deny\ndecided by: no-big-sums \(deny\): sums over 100 are not allowed\n/)
  t.match(denied.text, /no-big-sums: true/)
  const bob = await run(['--request', '{"method":"tools/call","params":{"name":"echo","arguments":{}}}', '--principal', '{"id":"bob"}'])
  t.match(bob, { code: 2, text: /decided by: auth\.tools \(deny\): this tool is not available to you/ }, 'auth.tools is the CEL rule it is shorthand for')
})

t.test('a rule that does not compile refuses the config, naming it and where', async (t) => {
  const up = await upstream(t)
  await t.rejects(gateway(t, { upstream: up.url, policy: { rules: [{ name: 'typo', effect: 'deny', when: 'tool.nme == "x"' }] } }), /policy rule "typo": .*nme.* \(line 1, column \d+\)/)
  await t.rejects(gateway(t, { upstream: up.url, policy: { rules: [{ name: 'x', effect: 'deny', when: 'true', extra: 1 } as never] } }), /extra|unknown/i, 'unknown keys refused')
  await t.rejects(gateway(t, { upstream: up.url, policy: { file: '/nonexistent/policy.json', rules: [] } }), /not both/)
})

t.test('prompts and resources: rules on prompt.name and resource.uri, for gets, reads and lists', async (t) => {
  const gw = await gateway(t, {
    upstream: everythingStdio('everything'),
    policy: {
      rules: [
        { name: 'no-args-prompt', effect: 'deny', when: 'method == "prompts/get" && prompt.name == "args-prompt"' },
        { name: 'no-architecture-doc', effect: 'deny', when: 'method == "resources/read" && resource.uri.endsWith("/architecture.md")', message: 'that document is internal' }
      ]
    }
  })
  const { client: c } = await client(t, gw.url)
  const prompts = (await c.listPrompts()).prompts.map((prompt) => prompt.name)
  t.ok(prompts.includes('simple-prompt') && !prompts.includes('args-prompt'), 'a prompt every get of would be denied is not listed')
  t.match(await refusal(c.getPrompt({ name: 'args-prompt', arguments: { city: 'x' } })), { code: -32055, data: { rule: 'no-args-prompt' } })
  t.ok((await c.getPrompt({ name: 'simple-prompt' })).messages.length > 0, 'another prompt is got')
  const uris = (await c.listResources()).resources.map((resource) => resource.uri)
  t.ok(uris.some((uri) => uri.endsWith('/features.md')) && !uris.some((uri) => uri.endsWith('/architecture.md')), 'a resource every read of would be denied is not listed')
  t.match(await refusal(c.readResource({ uri: 'demo://resource/static/document/architecture.md' })), { code: -32055, message: /that document is internal/, data: { rule: 'no-architecture-doc' } })
  t.ok((await c.readResource({ uri: uris.find((uri) => uri.endsWith('/features.md')) as string })).contents.length > 0, 'another resource is read')
})
