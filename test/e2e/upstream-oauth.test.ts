/**
 * Per-user OAuth to upstreams, end to end against a real authorization server (oidc-provider):
 * a user with no token gets the consent URL in their era's terms (the URLElicitationRequired
 * error for a 2025-11-25 client, an `input_required` URL elicitation for a 2026 client that takes
 * one); an HTTP client follows it as a browser would (signs in, consents, lands on the gateway's
 * callback); the request sent again goes through with the user's own token. Then refresh, an
 * upstream that refuses a token, an admin's revoke, two users kept apart, and two instances on
 * Redis sharing the sealed tokens.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { GatewayWebSocketTransport } from '../../examples/websocket-client/transport.ts'
import mcpGateway, { type McpGatewayOptions } from '../../plugins/index.ts'
import { eventually, textOf, upstream } from '../helpers/peers.ts'
import { modernUpstream } from '../helpers/eras.ts'
import { signIn, startIdp, type Idp } from '../helpers/oidc.ts'
import { protectedUpstream, type ProtectedUpstream } from '../helpers/protected-upstream.ts'
import { GATEWAY_RESOURCE, gatewayClient, jwtAuth, legacyClient } from '../helpers/identity.ts'
import { freePort } from '../helpers/ports.ts'
import { adminApi } from '../helpers/admin.ts'
import { REDIS_URL, redisClient, skipWithoutRedis } from '../helpers/redis.ts'

const SECRET = 'gateway-secret-0123456789'
const KEY = randomBytes(32).toString('base64')
const ADMIN_KEY = 'admin-key-0123456789abcdef'

interface Rig {
  idp: Idp
  up: ProtectedUpstream
  /** The 2026 server behind the upstream's token check (what it was sent). */
  modern?: Awaited<ReturnType<typeof modernUpstream>>
  /** The 2025 server behind it (what it was sent). */
  demo?: Awaited<ReturnType<typeof upstream>>
  /** The gateways' OAuth callback (the first gateway's, unless given). */
  callbackUrl: string
  port: number
}

async function rig (t: Test, era: '2025' | '2026'): Promise<Rig> {
  const port = await freePort()
  const callbackUrl = `http://127.0.0.1:${port}/oauth/callback`
  const idp = await startIdp(t, { clients: [gatewayClient(callbackUrl)] })
  const modern = era === '2026' ? await modernUpstream(t) : undefined
  const demo = era === '2025' ? await upstream(t) : undefined
  const inner = modern?.url ?? (demo as Awaited<ReturnType<typeof upstream>>).url
  return { idp, up: await protectedUpstream(t, idp.issuer, inner), callbackUrl, port, modern, demo }
}

async function start (t: Test, r: Rig, era: '2025' | '2026', extra: Partial<McpGatewayOptions> = {}, port = r.port): Promise<{ app: FastifyInstance, url: string, base: string }> {
  const app = Fastify({ logger: false })
  await app.register(mcpGateway, {
    auth: jwtAuth(r.idp.issuer),
    identity: { callbackUrl: r.callbackUrl, keys: [KEY] },
    admin: { apiKeys: [{ name: 'ops', key: ADMIN_KEY }] },
    websocket: true,
    upstream: { url: r.up.url, protocol: era, auth: { mode: 'oauth', clientId: 'gateway', clientSecret: SECRET, scope: 'mcp' } },
    ...extra
  })
  t.teardown(() => app.close())
  const base = await app.listen({ host: '127.0.0.1', port })
  return { app, url: `${base}/mcp`, base }
}

/** What a 2025 client's connect (or call) refused with: the consent URL and its elicitation id. */
async function consentFrom (attempt: Promise<unknown>): Promise<{ url: string, elicitationId: string }> {
  try {
    await attempt
  } catch (err) {
    if (!(err instanceof McpError) || err.code !== -32042) throw err
    const elicitation = (err.data as { elicitations: Array<{ mode: string, url: string, elicitationId: string }> }).elicitations[0]
    if (elicitation?.mode !== 'url') throw new Error(`not a URL elicitation: ${JSON.stringify(err.data)}`)
    return elicitation
  }
  throw new Error('no consent was asked for')
}

t.test('2025-11-25 client: URLElicitationRequired, sign-in through the callback, then the user\'s own token', async (t) => {
  const r = await rig(t, '2025')
  const gw = await start(t, r, '2025')
  const alice = await r.idp.userToken('alice', GATEWAY_RESOURCE)
  const prompt = await consentFrom(legacyClient(t, gw.url, alice))
  t.equal(new URL(prompt.url).origin, new URL(r.callbackUrl).origin, 'the consent URL is the gateway\'s sign-in page')
  const page = await fetch(prompt.url)
  t.match(await page.text(), new RegExp(`${r.idp.issuer}#alice`), 'it names the principal the account will serve')
  t.equal(page.headers.get('x-frame-options'), 'DENY', 'never framed (its button must be the user\'s own click)')
  t.equal(page.headers.get('referrer-policy'), 'same-origin', 'so its same-origin POST carries an Origin')
  const flow = new URL(prompt.url).searchParams.get('flow') as string
  const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `flow=${encodeURIComponent(flow)}`, redirect: 'manual' as const }
  const foreign = await fetch(prompt.url, { ...form, headers: { ...form.headers, origin: 'https://elsewhere.example' } })
  t.equal(foreign.status, 403, 'a form posted from another site does not start the sign-in')
  await foreign.text()
  const onward = await fetch(prompt.url, { ...form, headers: { ...form.headers, origin: new URL(r.callbackUrl).origin } })
  t.equal(onward.status, 303)
  const authorize = new URL(onward.headers.get('location') as string)
  t.equal(authorize.origin, r.idp.issuer, 'the button goes on to the upstream\'s authorization server')
  t.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
  t.equal(authorize.searchParams.get('resource'), r.up.url, 'a token for this upstream (RFC 8707)')
  t.same(await consentFrom(legacyClient(t, gw.url, alice)), prompt, 'asked again before signing in: the same sign-in')
  t.equal(r.up.seen.length, 0, 'nothing reached the upstream without the user\'s token')

  const back = await signIn(prompt.url, 'alice', { follow: true })
  t.equal(back.location.href.startsWith(r.callbackUrl), true, 'the authorization server sent the browser to the gateway')
  t.equal(back.page?.status, 200)
  t.match(back.page?.text, /Signed in/)

  const client = await legacyClient(t, gw.url, alice)
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'mine' } })), 'mine')
  await eventually(() => r.up.seen.some((seen) => seen.method === 'GET'))
  t.ok(r.up.seen.length > 0 && r.up.seen.every((seen) => seen.sub === 'alice' && seen.aud === r.up.url), 'the upstream saw alice, with its own audience, on her GET stream too')
  t.notOk(r.up.seen.some((seen) => seen.token === alice), 'never the client\'s token')

  // Bob has his own sign-in, and never alice's token.
  const bob = await r.idp.userToken('bob', GATEWAY_RESOURCE)
  const bobPrompt = await consentFrom(legacyClient(t, gw.url, bob))
  t.not(bobPrompt.url, prompt.url)
  await signIn(bobPrompt.url, 'bob', { follow: true })
  const bobClient = await legacyClient(t, gw.url, bob)
  t.equal(textOf(await bobClient.callTool({ name: 'echo', arguments: { text: 'his' } })), 'his')
  const aliceTokens = new Set(r.up.seen.filter((s) => s.sub === 'alice').map((s) => s.token))
  t.ok(r.up.seen.some((s) => s.sub === 'bob'))
  t.notOk(r.up.seen.some((s) => s.sub === 'bob' && aliceTokens.has(s.token)), 'two users never share an upstream token')

  // The callback's state is good once.
  const replay = await fetch(back.location.href)
  t.equal(replay.status, 400)
  t.match(await replay.text(), /unknown, used already or expired/, 'a sign-in\'s state is good for one callback')

  // An admin revokes alice: her next request asks for consent again; bob goes on.
  const listed = await (await adminApi(`${gw.base}/admin`, ADMIN_KEY, 'GET', '/identities')).json() as { upstreams: Array<{ name: string, principals: string[] }> }
  t.same(listed.upstreams[0]?.principals.sort(), [`${r.idp.issuer}#alice`, `${r.idp.issuer}#bob`])
  const revoked = await adminApi(`${gw.base}/admin`, ADMIN_KEY, 'DELETE', `/identities/default/${encodeURIComponent(`${r.idp.issuer}#alice`)}`)
  t.equal(revoked.status, 204)
  await consentFrom(client.callTool({ name: 'echo', arguments: { text: 'again' } }))
  t.equal(textOf(await bobClient.callTool({ name: 'echo', arguments: { text: 'still' } })), 'still')
  // Over a WebSocket, the same prompt in band.
  const gina = await r.idp.userToken('gina', GATEWAY_RESOURCE)
  const ws = new Client({ name: 'ws-oauth', version: '1.0.0' })
  const wsPrompt = await consentFrom(ws.connect(new GatewayWebSocketTransport(`${gw.url.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${gina}` } })))
  t.match(wsPrompt.url, /[?&]flow=/, 'a WebSocket client gets the sign-in page too')
  await ws.close()

  const none = await adminApi(`${gw.base}/admin`, ADMIN_KEY, 'DELETE', `/identities/default/${encodeURIComponent(`${r.idp.issuer}#alice`)}`)
  t.equal(none.status, 404, 'nothing left to revoke')
})

t.test('a sign-in is finished only in the browser that clicked its page\'s button', async (t) => {
  const r = await rig(t, '2025')
  const gw = await start(t, r, '2025')
  const mallory = await r.idp.userToken('mallory', GATEWAY_RESOURCE)
  const prompt = await consentFrom(legacyClient(t, gw.url, mallory))
  // Mallory clicks her own sign-in page's button, and passes the authorization server's URL on.
  const onward = await fetch(prompt.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(r.callbackUrl).origin },
    body: `flow=${encodeURIComponent(new URL(prompt.url).searchParams.get('flow') as string)}`,
    redirect: 'manual'
  })
  t.equal(onward.status, 303)
  t.match(onward.headers.get('set-cookie'), /^mcp_gw_signin=[\w-]{43}; Max-Age=\d+; Path=\/oauth\/callback; HttpOnly; SameSite=Lax$/, 'the clicking browser gets a cookie scripts cannot read')
  const passedOn = await signIn(onward.headers.get('location') as string, 'alice', { follow: true })
  t.equal(passedOn.page?.status, 400, 'alice signs in from the link she was sent: the gateway refuses to finish it')
  t.match(passedOn.page?.text, /started in another browser/)
  t.equal(r.up.seen.length, 0)
  t.same(await consentFrom(legacyClient(t, gw.url, mallory)), prompt, 'mallory holds no token (alice\'s account serves no one), and her sign-in is still open')
  const own = await signIn(prompt.url, 'mallory', { follow: true })
  t.equal(own.page?.status, 200, 'from her own sign-in page, in her own browser, it finishes')
  const client = await legacyClient(t, gw.url, mallory)
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hers' } })), 'hers')
  t.ok(r.up.seen.every((seen) => seen.sub === 'mallory'))
})

t.test('a host app with its own form parser and cookie plugin: the gateway\'s sign-in routes keep theirs in their own scope', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(cookie)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, { host: body }) })
  app.post('/host-form', async (request) => request.body)
  await app.register(mcpGateway, { auth: jwtAuth('http://127.0.0.1:9'), identity: { callbackUrl: 'http://127.0.0.1:9/oauth/callback', keys: [KEY] }, upstream: { url: 'http://127.0.0.1:9/mcp', protocol: '2025', auth: { mode: 'oauth', clientId: 'gw', clientSecret: 's' } } })
  const res = await app.inject({ method: 'POST', url: '/host-form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' })
  t.same(res.json(), { host: 'a=1' }, 'the host\'s parser still serves the host\'s routes')
  const post = await app.inject({ method: 'POST', url: '/oauth/callback', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1:9' }, payload: 'flow=unknown' })
  t.equal(post.statusCode, 400, 'the sign-in route reads its own form')
  t.match(post.body, /unknown, used already or expired/)
})

t.test('dynamic registration: no clientId, and the gateway registers itself once (RFC 7591)', async (t) => {
  const r = await rig(t, '2025')
  const gw = await start(t, r, '2025', { upstream: { url: r.up.url, protocol: '2025', auth: { mode: 'oauth', scope: 'mcp' } } })
  const [alice, bob] = await Promise.all([r.idp.userToken('alice', GATEWAY_RESOURCE), r.idp.userToken('bob', GATEWAY_RESOURCE)])
  const [first, second] = await Promise.all([consentFrom(legacyClient(t, gw.url, alice)), consentFrom(legacyClient(t, gw.url, bob))])
  t.equal(r.idp.grants.get('registration'), 1, 'one registration for both users')
  const back = await signIn(first.url, 'alice', { follow: true })
  t.match(back.page?.text, /Signed in/)
  await signIn(second.url, 'bob', { follow: true })
  for (const [user, token] of [['alice', alice], ['bob', bob]] as const) {
    const client = await legacyClient(t, gw.url, token)
    t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: user } })), user)
  }
  t.same(new Set(r.up.seen.map((seen) => seen.sub)), new Set(['alice', 'bob']))
})

t.test('refresh: a token near its expiry is refreshed before use', async (t) => {
  const r = await rig(t, '2025')
  // Every stored token counts as near its expiry: each use refreshes it first.
  const gw = await start(t, r, '2025', {
    upstream: { url: r.up.url, protocol: '2025', auth: { mode: 'oauth', clientId: 'gateway', clientSecret: SECRET, scope: 'mcp', refreshBeforeMs: 3_600_000 } }
  })
  const alice = await r.idp.userToken('alice', GATEWAY_RESOURCE)
  await signIn((await consentFrom(legacyClient(t, gw.url, alice))).url, 'alice', { follow: true })
  const codes = r.idp.grants.get('authorization_code')
  const client = await legacyClient(t, gw.url, alice)
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'fresh' } })), 'fresh')
  t.ok((r.idp.grants.get('refresh_token') ?? 0) >= 1, 'refreshed before use')
  t.equal(r.idp.grants.get('authorization_code'), codes, 'no new sign-in')
})

t.test('a token the upstream refuses is refreshed once; refused again, the user is asked to sign in again', async (t) => {
  const r = await rig(t, '2025')
  const gw = await start(t, r, '2025')
  const alice = await r.idp.userToken('alice', GATEWAY_RESOURCE)
  await signIn((await consentFrom(legacyClient(t, gw.url, alice))).url, 'alice', { follow: true })
  const client2 = await legacyClient(t, gw.url, alice)
  t.equal(textOf(await client2.callTool({ name: 'echo', arguments: { text: 'stored' } })), 'stored')
  const used = r.up.seen.at(-1)?.token as string
  r.up.refuse(used)
  const refreshes = r.idp.grants.get('refresh_token') ?? 0
  t.equal(textOf(await client2.callTool({ name: 'echo', arguments: { text: 'renewed' } })), 'renewed', 'refused, refreshed, sent again')
  t.equal(r.idp.grants.get('refresh_token'), refreshes + 1)
  t.not(r.up.seen.at(-1)?.token, used)
  r.up.refuseAll()
  await consentFrom(client2.callTool({ name: 'echo', arguments: { text: 'refused' } }))
})

t.test('requests with no client request at hand (a heartbeat ping, a cancellation) carry the session user\'s token', async (t) => {
  const r = await rig(t, '2025')
  const gw = await start(t, r, '2025', {
    heartbeat: { intervalMs: 100, maxFailures: 1 },
    upstream: { url: r.up.url, protocol: '2025', requestTimeout: 300, auth: { mode: 'oauth', clientId: 'gateway', clientSecret: SECRET, scope: 'mcp' } }
  })
  const alice = await r.idp.userToken('alice', GATEWAY_RESOURCE)
  await signIn((await consentFrom(legacyClient(t, gw.url, alice))).url, 'alice', { follow: true })
  const client = await legacyClient(t, gw.url, alice)
  const demo = r.demo as Awaited<ReturnType<typeof upstream>>
  const pinged = (): boolean => demo.record.requests.some((seen) => (seen.body as { method?: string } | undefined)?.method === 'ping')
  await eventually(pinged, 5000)
  t.pass('the idle session\'s ping reached the upstream, past its token check')
  t.equal(gw.app.mcpSessions.counts.ended, 0, 'and the session lives on')
  const cut = await client.callTool({ name: 'wait', arguments: { ms: 5000 } }).then(() => undefined, (err: unknown) => err as { code: number })
  t.equal(cut?.code, -32061, 'a call past its timeout is cut short')
  await eventually(() => demo.record.cancelled.length === 1, 5000)
  t.pass('the upstream was told to cancel it, with alice\'s token')
  t.ok(r.up.seen.every((seen) => seen.sub === 'alice'))
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still' } })), 'still')

  // Alice's token revoked: her session's pings cannot be sent, which says nothing of the upstream
  // session. Bob's pings show rounds passing: the third after the revoke ran wholly after it.
  const bob = await r.idp.userToken('bob', GATEWAY_RESOURCE)
  await signIn((await consentFrom(legacyClient(t, gw.url, bob))).url, 'bob', { follow: true })
  await legacyClient(t, gw.url, bob)
  const bobSession = (await gw.app.mcpSessions.store.list(10)).find((record) => record.principal === `${r.idp.issuer}#bob`)
  const bobPings = (): number => demo.record.requests.filter((seen) => seen.headers['mcp-session-id'] === bobSession?.upstreamSessionId && (seen.body as { method?: string } | undefined)?.method === 'ping').length
  const revoked = await adminApi(`${gw.base}/admin`, ADMIN_KEY, 'DELETE', `/identities/default/${encodeURIComponent(`${r.idp.issuer}#alice`)}`)
  t.equal(revoked.status, 204)
  const before = bobPings()
  await eventually(() => bobPings() >= before + 3, 5000)
  t.equal(gw.app.mcpSessions.counts.ended, 0, 'a session whose user has no token is not ended as dead')
  const store = (gw.app.mcpIdentity as unknown as { options: { store: { keys: (prefix: string, limit: number) => Promise<string[]> } } }).options.store
  t.same(await store.keys('p:', 10), [], 'and its pings start no sign-in nobody would see')
  await consentFrom(client.callTool({ name: 'echo', arguments: { text: 'again' } }))
})

t.test('2026-07-28 client: an input_required URL elicitation, and the retry carrying the gateway\'s requestState', async (t) => {
  const r = await rig(t, '2026')
  const gw = await start(t, r, '2026')
  const carol = await r.idp.userToken('carol', GATEWAY_RESOURCE)
  const call = async (extra: Record<string, unknown> = {}, capabilities: Record<string, unknown> = { elicitation: { url: {} } }): Promise<{ status: number, body: Record<string, any> }> => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${carol}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'modern' }, ...extra, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': capabilities } } })
    })
    return { status: res.status, body: await res.json() as Record<string, any> }
  }
  const plain = await call({}, {})
  t.equal(plain.status, 200)
  t.equal(plain.body.error?.code, -32042, 'a client without URL elicitation gets the URLElicitationRequired error')
  t.equal(plain.body.error?.data?.elicitations?.[0]?.mode, 'url')
  const first = await call()
  t.equal(first.status, 200)
  t.equal(first.body.result.inputRequests[plain.body.error.data.elicitations[0].elicitationId]?.params.url, plain.body.error.data.elicitations[0].url, 'the same sign-in either way')
  t.equal(first.body.result?.resultType, 'input_required')
  const [key, input] = Object.entries(first.body.result.inputRequests as Record<string, { method: string, params: { mode: string, url: string } }>)[0] ?? []
  t.equal(input?.method, 'elicitation/create')
  t.equal(input?.params.mode, 'url')
  const state = first.body.result.requestState as string
  await signIn(input?.params.url as string, 'carol', { follow: true })
  const retried = await call({ inputResponses: { [key as string]: { action: 'accept' } }, requestState: state })
  t.equal(retried.status, 200)
  t.same(retried.body.result?.content, [{ type: 'text', text: 'modern' }], 'the retry went through')
  const sent = r.modern?.requests.map((request) => request.body as { method?: string, params: Record<string, unknown> }).find((body) => body.method === 'tools/call') as { params: Record<string, unknown> }
  t.equal(sent.params.requestState, undefined, 'the gateway\'s requestState stays with the gateway')
  t.equal(sent.params.inputResponses, undefined, 'and the answer to its elicitation')
  t.ok(r.up.seen.length > 0 && r.up.seen.every((seen) => seen.sub === 'carol' && seen.aud === r.up.url))
})

t.test('two instances on Redis: a sign-in finished on one serves the user on both', { skip: await skipWithoutRedis() }, async (t) => {
  const { prefix } = await redisClient(t)
  const r = await rig(t, '2025')
  const store = { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix }
  // The callback URL is the second instance's: the sign-in starts on one and ends on the other.
  const portB = r.port
  const a = await start(t, r, '2025', { store }, await freePort())
  const b = await start(t, r, '2025', { store }, portB)
  const alice = await r.idp.userToken('alice', GATEWAY_RESOURCE)
  const prompt = await consentFrom(legacyClient(t, a.url, alice))
  const back = await signIn(prompt.url, 'alice', { follow: true })
  t.equal(new URL(back.location.href).port, String(portB), 'the callback reached the other instance')
  t.match(back.page?.text, /Signed in/)
  for (const gw of [a, b]) {
    const client = await legacyClient(t, gw.url, alice)
    t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: gw.base } })), gw.base)
  }
  t.ok(r.up.seen.every((seen) => seen.sub === 'alice'))
})
