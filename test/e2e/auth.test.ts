/**
 * Inbound auth: API keys and JWTs, the 401/403 challenges and the protected resource metadata
 * they point at, sessions bound to their principal, no token passthrough, per-tool rules, rate
 * limits and the in-flight cap. Each defence has a test here that fails without it.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import mcpGateway from '../../plugins/index.ts'
import { eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { REDIS_URL, redisClient, skipWithoutRedis } from '../helpers/redis.ts'

const KEYS = [
  { name: 'alice', key: 'alice-key-0123456789abcdef' },
  { name: 'bob', key: 'bob-key-0123456789abcdef', scopes: ['admin'] }
]
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

async function connect (t: Test, url: string, token: string): Promise<{ client: Client, transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  const client = new Client({ name: 'auth-test', version: '1.0.0' })
  await client.connect(transport)
  t.teardown(() => client.close())
  return { client, transport }
}

async function post (url: string, headers: Record<string, string>, body: string): Promise<{ status: number, headers: Headers, body: { id?: unknown, error?: { code: number, message: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body })
  const json = res.headers.get('content-type')?.startsWith('application/json') === true
  return { status: res.status, headers: res.headers, body: json ? await res.json() as { error?: { code: number, message: string } } : (await res.text(), {}) }
}

t.test('API keys: challenges, sessions bound to their principal, no token passthrough', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstream: up.url,
    auth: { apiKeys: { keys: KEYS }, metadata: { resource: 'https://gateway.example.com/mcp', authorizationServers: ['https://auth.example.com'] } }
  })
  const anonymous = await post(gw.url, {}, INITIALIZE)
  t.equal(anonymous.status, 401)
  t.equal(anonymous.body.error?.code, -32057)
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer resource_metadata="https://gateway.example.com/.well-known/oauth-protected-resource/mcp"')
  const wrong = await post(gw.url, { authorization: 'Bearer not-a-key-0123456789' }, INITIALIZE)
  t.equal(wrong.status, 401)
  t.match(wrong.headers.get('www-authenticate'), /error="invalid_token"/)
  t.equal((await post(gw.url, { authorization: 'Basic YWxpY2U6eA==' }, INITIALIZE)).status, 401)

  const metadata = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', gw.url))).json()
  t.same(metadata, { resource: 'https://gateway.example.com/mcp', authorization_servers: ['https://auth.example.com'], bearer_methods_supported: ['header'] })

  const alice = await connect(t, gw.url, KEYS[0]?.key as string)
  t.equal(textOf(await alice.client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'hi')
  const sessionId = alice.transport.sessionId as string
  const hijack = await post(gw.url, { authorization: `Bearer ${KEYS[1]?.key as string}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, '{"jsonrpc":"2.0","id":5,"method":"tools/list"}')
  t.equal(hijack.status, 404, 'another principal\'s session id does not exist for bob')
  t.equal(hijack.body.error?.code, -32001)
  const own = await post(gw.url, { authorization: `Bearer ${KEYS[0]?.key as string}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }, '{"jsonrpc":"2.0","id":6,"method":"ping"}')
  t.equal(own.status, 200, 'alice still uses her session')

  const seen = up.record.requests.map((request) => request.headers.authorization)
  t.ok(seen.length > 0 && seen.every((value) => value === undefined), 'the client\'s credential never reaches the upstream')
})

t.test('the host app\'s own routes are not behind the MCP auth', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, auth: { apiKeys: { keys: KEYS } } }, (app) => { app.get('/hello', async () => ({ hello: 'world' })) })
  t.same(await (await fetch(new URL('/hello', gw.url))).json(), { hello: 'world' })
  t.equal((await fetch(new URL('/healthz', gw.url))).status, 200)
})

t.test('JWT: issuer, audience, expiry, subject and scopes; static keys and a JWKS URL', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const jwk: JWK = { ...await exportJWK(publicKey), kid: 'k1', alg: 'ES256' }
  const issuer = 'https://auth.example.com'
  const audience = 'https://gateway.example.com/mcp'
  const sign = async (claims: Record<string, unknown>, options: { aud?: string, iss?: string, exp?: string | number, sub?: string | null } = {}): Promise<string> => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setIssuer(options.iss ?? issuer).setAudience(options.aud ?? audience).setExpirationTime(options.exp ?? '5m')
    if (options.sub !== null) jwt.setSubject(options.sub ?? 'user-1')
    return await jwt.sign(privateKey)
  }
  const jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => jwks.close())
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`
  const up = await upstream(t)
  for (const keys of [{ jwks: { keys: [jwk] } }, { jwksUrl }]) {
    const gw = await gateway(t, { upstream: up.url, auth: { jwt: { ...keys, issuer, audience }, requiredScopes: ['mcp:use'] } })
    const good = await sign({ scope: 'mcp:use tools:read' })
    const { client } = await connect(t, gw.url, good)
    t.same(await client.ping(), {}, `a valid token is accepted (${Object.keys(keys)[0] as string})`)
    const cases: Array<[string, string, RegExp]> = [
      ['expired', await sign({ scope: 'mcp:use' }, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
      ['another audience', await sign({ scope: 'mcp:use' }, { aud: 'https://other.example.com/mcp' }), /aud/],
      ['another issuer', await sign({ scope: 'mcp:use' }, { iss: 'https://evil.example.com' }), /iss/],
      ['no subject', await sign({ scope: 'mcp:use' }, { sub: null }), /subject/],
      ['garbage', 'not.a.jwt', /not valid/]
    ]
    for (const [name, token, message] of cases) {
      const res = await post(gw.url, { authorization: `Bearer ${token}` }, INITIALIZE)
      t.equal(res.status, 401, name)
      t.match(res.body.error?.message, message, name)
      t.match(res.headers.get('www-authenticate'), /error="invalid_token"/)
    }
    const scopeless = await post(gw.url, { authorization: `Bearer ${await sign({ scope: 'tools:read' })}` }, INITIALIZE)
    t.equal(scopeless.status, 403)
    t.equal(scopeless.body.error?.code, -32058)
    t.match(scopeless.headers.get('www-authenticate'), /error="insufficient_scope", scope="mcp:use"/)
    t.match(scopeless.headers.get('www-authenticate'), /resource_metadata="https:\/\/gateway\.example\.com\/\.well-known\/oauth-protected-resource\/mcp"/)
  }
})

t.test('per-tool rules: tools/list shows what the caller may call; other calls are blocked', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, {
    upstream: up.url,
    auth: { apiKeys: { keys: KEYS }, tools: [{ principals: ['alice'], tools: ['echo', 'a*'] }, { scopes: ['admin'], tools: ['*'] }] }
  })
  const alice = await connect(t, gw.url, KEYS[0]?.key as string)
  t.same((await alice.client.listTools()).tools.map((tool) => tool.name).sort(), ['add', 'echo'])
  const blocked = await alice.client.callTool({ name: 'countdown', arguments: { from: 1 } }).then(() => undefined, (err: unknown) => err as { code: number })
  t.equal(blocked?.code, -32055, 'a call to a tool not granted is blocked before the upstream')
  t.notOk(up.record.requests.some((r) => (r.body as { params?: { name?: string } } | undefined)?.params?.name === 'countdown'), 'the upstream never saw it')
  const bob = await connect(t, gw.url, KEYS[1]?.key as string)
  t.same((await bob.client.listTools()).tools.map((tool) => tool.name).sort(), ['add', 'confirm', 'countdown', 'echo', 'grow', 'wait'])
})

t.test('rate limits: per principal, 429 with Retry-After and a JSON-RPC error', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, auth: { apiKeys: { keys: KEYS } }, rateLimit: { max: 4, timeWindowMs: 60_000 } })
  const alice = { authorization: `Bearer ${KEYS[0]?.key as string}` }
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await post(gw.url, alice, INITIALIZE)).status)
  t.same(statuses, [200, 200, 200, 200, 429])
  const limited = await post(gw.url, alice, INITIALIZE)
  t.equal(limited.body.error?.code, -32059)
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After says when')
  t.equal((await post(gw.url, { authorization: `Bearer ${KEYS[1]?.key as string}` }, INITIALIZE)).status, 200, 'bob has his own budget')
})

t.test('rate limits per IP without auth', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, rateLimit: { max: 2 } })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await post(gw.url, {}, INITIALIZE)).status)
  t.same(statuses, [200, 200, 429])
  await t.rejects(gateway(t, { upstream: up.url, rateLimit: { max: 2, keyBy: 'principal' } }), /needs the auth plugin/)
})

t.test('a session may have only so many requests in flight', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, maxInFlightPerSession: 2 })
  const init = await fetch(gw.url, { method: 'POST', headers: JSON_HEADERS, body: INITIALIZE })
  const headers = { 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-11-25' }
  await init.text()
  const call = (id: number): Promise<{ status: number }> => post(gw.url, headers, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'wait', arguments: { ms: 1500 } } })).catch(() => ({ status: 0 }))
  const slow = [call(1), call(2)]
  // Both are in flight once the upstream has them (they wait there 1.5 s).
  await eventually(() => up.record.requests.filter((r) => (r.body as { method?: string } | undefined)?.method === 'tools/call').length === 2)
  const third = await post(gw.url, headers, '{"jsonrpc":"2.0","id":3,"method":"ping"}')
  t.equal(third.status, 429)
  t.equal(third.body.error?.code, -32069)
  t.equal(third.headers.get('retry-after'), '1')
  t.same((await Promise.all(slow)).map((r) => r.status), [200, 200])
  t.equal((await post(gw.url, headers, '{"jsonrpc":"2.0","id":4,"method":"ping"}')).status, 200, 'room again once they finish')
})

t.test('listening beyond loopback without auth logs a warning; with auth it does not', async (t) => {
  const up = await upstream(t)
  for (const auth of [undefined, { apiKeys: { keys: KEYS } }]) {
    let logged = ''
    const stream = new Writable({ write (chunk, _encoding, done) { logged += String(chunk); done() } })
    const app = Fastify({ logger: { level: 'warn', stream } })
    await app.register(mcpGateway, { upstream: up.url, ...(auth === undefined ? {} : { auth }) })
    await app.listen({ host: '0.0.0.0', port: 0 })
    await app.close()
    t.equal(logged.includes('beyond loopback with inbound auth off'), auth === undefined, auth === undefined ? 'warned' : 'quiet with auth')
  }
})

t.test('bad auth options are refused, naming the option', async (t) => {
  const refuse = async (auth: unknown, pattern: RegExp): Promise<void> => {
    const app = Fastify({ logger: false })
    await t.rejects((async () => {
      await app.register(mcpGateway, { upstream: 'http://127.0.0.1:1/mcp', auth } as never)
      await app.ready()
    })(), pattern)
    await app.close()
  }
  await refuse({}, /"auth"/)
  await refuse({ apiKeys: { keys: [{ name: 'a', key: 'short' }] } }, /"auth\.apiKeys\.keys\[0\]"/)
  await refuse({ apiKeys: { keys: [] } }, /"auth\.apiKeys"/)
  await refuse({ apiKeys: { keysFile: '/nonexistent' } }, /"auth\.apiKeys\.keysFile"/)
  await refuse({ jwt: { jwks: { keys: [] }, issuer: 'x' } }, /"auth\.jwt\.audience"/)
  await refuse({ jwt: { issuer: 'x', audience: 'y' } }, /"auth\.jwt"/)
  await refuse({ apiKeys: { keys: KEYS }, tools: [{ tools: [] }] }, /"auth\.tools\[0\]\.tools"/)
  await refuse({ apiKeys: { keys: KEYS }, requiredScopes: ['a"b'] }, /"auth\.requiredScopes"/)
})

t.test('rate limits on Redis: every instance draws on one budget', { skip: await skipWithoutRedis() }, async (t) => {
  const { prefix } = await redisClient(t)
  const up = await upstream(t)
  const options = { upstream: up.url, store: { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix }, auth: { apiKeys: { keys: KEYS } }, rateLimit: { max: 3 } }
  const a = await gateway(t, options)
  const b = await gateway(t, options)
  const alice = { authorization: `Bearer ${KEYS[0]?.key as string}` }
  const statuses = []
  for (const url of [a.url, b.url, a.url, b.url]) statuses.push((await post(url, alice, INITIALIZE)).status)
  t.same(statuses, [200, 200, 200, 429], 'the fourth request is over the shared budget, whichever instance it reaches')
})
