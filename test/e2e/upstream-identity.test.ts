/**
 * Upstream identity, the gateway's and the user's: `clientCredentials` and `tokenExchange`
 * against a real authorization server (oidc-provider), in front of upstreams that verify their
 * tokens with jose against its JWKS. Each upstream records the subject and audience it saw: the
 * gateway's own identity, or each user's with the upstream's own audience, never the client's
 * token. Both protocol eras; HTTP and WebSocket clients.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import mcpGateway from '../../plugins/index.ts'
import { GatewayWebSocketTransport } from '../../examples/websocket-client/transport.ts'
import { gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient, modernUpstream } from '../helpers/eras.ts'
import { startIdp, TOKEN_EXCHANGE, type Idp } from '../helpers/oidc.ts'
import { protectedUpstream, type ProtectedUpstream } from '../helpers/protected-upstream.ts'
import { GATEWAY_RESOURCE, gatewayClient, jwtAuth, legacyClient } from '../helpers/identity.ts'
import { initializeBody, postHeaders, type RpcError } from '../helpers/http.ts'

const SECRET = 'gateway-secret-0123456789'

async function setup (t: Test, era: '2025' | '2026'): Promise<{ idp: Idp, up: ProtectedUpstream }> {
  const idp = await startIdp(t, { clients: [gatewayClient()] })
  const inner = era === '2025' ? (await upstream(t)).url : (await modernUpstream(t)).url
  return { idp, up: await protectedUpstream(t, idp.issuer, inner) }
}

t.test('clientCredentials: the gateway\'s own token, fetched once for many concurrent calls', async (t) => {
  const { idp, up } = await setup(t, '2025')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    upstream: { url: up.url, protocol: '2025', auth: { mode: 'clientCredentials', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET } }
  })
  const token = await idp.userToken('alice', GATEWAY_RESOURCE)
  // Ten clients at once, before any token is held: their initializes wait on one token request.
  const clients = await Promise.all(Array.from({ length: 10 }, async () => await legacyClient(t, gw.url, token)))
  const results = await Promise.all(clients.flatMap((client, c) => [0, 1].map(async (i) => await client.callTool({ name: 'echo', arguments: { text: `n${c}.${i}` } }))))
  t.same(results.map(textOf), clients.flatMap((_, c) => [`n${c}.0`, `n${c}.1`]))
  t.equal(idp.grants.get('client_credentials'), 1, 'one token request for every call')
  t.ok(up.seen.length >= 21, 'initialize and every call reached the upstream')
  t.ok(up.seen.every((seen) => seen.sub === 'gateway' && seen.aud === up.url), 'the upstream saw the gateway, with its own audience')
  t.notOk(up.seen.some((seen) => seen.token === token), 'never the client\'s token')
})

t.test('clientCredentials: a token the upstream refuses is replaced once; refused again, the client gets a coded error', async (t) => {
  const { idp, up } = await setup(t, '2025')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    upstream: { url: up.url, protocol: '2025', auth: { mode: 'clientCredentials', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET } }
  })
  const client = await legacyClient(t, gw.url, await idp.userToken('alice', GATEWAY_RESOURCE))
  const first = up.seen[0]?.token as string
  up.refuse(first)
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'again' } })), 'again', 'a new token, and the call went through')
  t.equal(idp.grants.get('client_credentials'), 2)
  // Every token refused from now on: one more token, then a coded error without the upstream's challenge.
  up.refuseAll()
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${await idp.userToken('bob', GATEWAY_RESOURCE)}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  t.equal(res.status, 502)
  t.equal(res.headers.get('www-authenticate'), null, 'the upstream\'s challenge stays with the gateway')
  t.match(await res.json(), { error: { code: -32064, message: /rejected the gateway's credentials/ } })
  t.equal(idp.grants.get('client_credentials'), 3, 'one new token for the refused one, no more')
})

t.test('tokenExchange: each user\'s own subject with the upstream\'s audience, exchanged once per user; over HTTP and WebSocket', async (t) => {
  const { idp, up } = await setup(t, '2025')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    websocket: true,
    upstream: { url: up.url, protocol: '2025', auth: { mode: 'tokenExchange', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET, actor: true } }
  })
  const tokens = { alice: await idp.userToken('alice', GATEWAY_RESOURCE), bob: await idp.userToken('bob', GATEWAY_RESOURCE) }
  await Promise.all(Object.entries(tokens).map(async ([user, token]) => {
    // Five clients per user at once, before any exchanged token is held.
    const clients = await Promise.all(Array.from({ length: 5 }, async () => await legacyClient(t, gw.url, token)))
    const results = await Promise.all(clients.map(async (client, i) => await client.callTool({ name: 'echo', arguments: { text: `${user}${i}` } })))
    t.same(results.map(textOf), clients.map((_, i) => `${user}${i}`))
  }))
  t.equal(idp.grants.get(TOKEN_EXCHANGE), 2, `one exchange per user (${[...idp.grants].join(' ')})`)
  const subjects = new Set(up.seen.map((seen) => seen.sub))
  t.same([...subjects].sort(), ['alice', 'bob'], 'the upstream saw each user')
  t.ok(up.seen.every((seen) => seen.aud === up.url && seen.act === 'gateway'), 'its own audience, the gateway as actor')
  t.notOk(up.seen.some((seen) => seen.token === tokens.alice || seen.token === tokens.bob), 'never a client\'s token')
  const aliceTokens = new Set(up.seen.filter((s) => s.sub === 'alice').map((s) => s.token))
  t.notOk(up.seen.some((s) => s.sub === 'bob' && aliceTokens.has(s.token)), 'bob never got alice\'s token')

  const dave = await idp.userToken('dave', GATEWAY_RESOURCE)
  const ws = new Client({ name: 'ws-identity', version: '1.0.0' })
  await ws.connect(new GatewayWebSocketTransport(`${gw.url.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${dave}` } }))
  t.teardown(() => ws.close())
  t.equal(textOf(await ws.callTool({ name: 'echo', arguments: { text: 'over a socket' } })), 'over a socket')
  t.ok(up.seen.some((seen) => seen.sub === 'dave' && seen.aud === up.url), 'the WebSocket client\'s user, exchanged')
  t.notOk(up.seen.some((seen) => seen.token === dave))
})

t.test('tokenExchange: an exchanged token is held no longer than the token it was exchanged from', async (t) => {
  const { idp, up } = await setup(t, '2025')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    upstream: { url: up.url, protocol: '2025', auth: { mode: 'tokenExchange', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET } }
  })
  // The user's token lives 2 s (inside the 30 s margin at once); the exchanged ones would live 300 s.
  idp.setAccessTokenTtl(2)
  const token = await idp.userToken('erin', GATEWAY_RESOURCE)
  idp.setAccessTokenTtl(300)
  const client = await legacyClient(t, gw.url, token)
  const before = idp.grants.get(TOKEN_EXCHANGE) ?? 0
  for (const text of ['a', 'b', 'c']) t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text } })), text)
  t.equal(idp.grants.get(TOKEN_EXCHANGE), before + 3, 'each call exchanged anew: the cached token ended with the subject\'s')
})

t.test('tokenExchange, 2026-07-28: a stateless client', async (t) => {
  const { idp, up } = await setup(t, '2026')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    upstream: { url: up.url, protocol: '2026', auth: { mode: 'tokenExchange', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET } }
  })
  const token = await idp.userToken('carol', GATEWAY_RESOURCE)
  const client = await modernClient(t, gw.url, { headers: { authorization: `Bearer ${token}` } })
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'stateless' } })), 'stateless')
  t.ok(up.seen.length > 0 && up.seen.every((seen) => seen.sub === 'carol' && seen.aud === up.url && seen.act === undefined))
  t.notOk(up.seen.some((seen) => seen.token === token))
})

t.test('tokenExchange through the era bridge: a 2025-11-25 client of a 2026-07-28 upstream', async (t) => {
  const { idp, up } = await setup(t, '2026')
  const gw = await gateway(t, {
    auth: jwtAuth(idp.issuer),
    upstream: { url: up.url, protocol: '2026', auth: { mode: 'tokenExchange', tokenUrl: `${idp.issuer}/token`, clientId: 'gateway', clientSecret: SECRET } }
  })
  const token = await idp.userToken('frank', GATEWAY_RESOURCE)
  const client = await legacyClient(t, gw.url, token)
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'bridged' } })), 'bridged')
  t.ok(up.seen.length >= 2, 'server/discover and the call reached the upstream')
  t.ok(up.seen.every((seen) => seen.sub === 'frank' && seen.aud === up.url))
})

t.test('a token endpoint that does not answer: the request\'s own timeout answers the client, and nothing waits on the token request', async (t) => {
  // The authorization server accepts the connection and never answers (a hung one).
  const held = new Set<ServerResponse>()
  let given = 0
  const hung = createServer((req, res) => {
    held.add(res)
    req.socket.once('close', () => { given++ })
  })
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { hung.closeAllConnections(); hung.close(() => resolve()) }))
  const tokenUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/token`
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: { url: up.url, protocol: '2025', requestTimeout: 300, auth: { mode: 'clientCredentials', tokenUrl, clientId: 'gateway', clientSecret: SECRET } } })
  const res = await fetch(gw.url, { method: 'POST', headers: postHeaders(), body: initializeBody() })
  const body = await res.json() as RpcError
  t.equal(body.error.code, -32061, 'MCP_GW_UPSTREAM_TIMEOUT after 300 ms, not MCP_GW_UPSTREAM_TOKEN after the token request\'s 10 s')
  t.equal(held.size, 1, 'the token was asked for')
  t.equal(up.record.requests.length, 0, 'nothing reached the upstream without its token')
  // The request given up holds nothing: the gateway closes while the token request is still open
  // (it goes on alone, bounded by its own timeout), instead of waiting for it.
  await gw.app.close()
  t.equal(given, 0, 'closed before the token request gave up')
})

t.test('tokenExchange and oauth need inbound auth and a known era; a bad auth section is refused', async (t) => {
  const refused = async (options: Record<string, unknown>, pattern: RegExp): Promise<void> => {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(mcpGateway, options as never).ready() }, pattern)
  }
  const exchange = { mode: 'tokenExchange', tokenUrl: 'http://127.0.0.1:9/token', clientId: 'gw', clientSecret: 's' }
  await refused({ upstream: { url: 'http://127.0.0.1:9/mcp', protocol: '2025', auth: exchange } }, /needs inbound auth/)
  await refused({ auth: { apiKeys: { keys: [{ name: 'a', key: 'a-key-0123456789abcdef' }] } }, upstream: { url: 'http://127.0.0.1:9/mcp', protocol: '2025', auth: exchange } }, /inbound JWT auth/)
  await refused({ auth: jwtAuth('http://127.0.0.1:9'), upstream: { url: 'http://127.0.0.1:9/mcp', auth: exchange } }, /"protocol": "2025" or "2026"/)
  const { tokenUrl: _tokenUrl, ...client } = exchange
  await refused({ auth: jwtAuth('http://127.0.0.1:9'), upstream: { url: 'http://127.0.0.1:9/mcp', protocol: '2025', auth: { ...client, mode: 'oauth' } } }, /identity plugin/)
  await refused({ upstream: { url: 'http://127.0.0.1:9/mcp', auth: { mode: 'password' } } }, /mode is "static", "clientCredentials", "tokenExchange" or "oauth"/)
  await refused({ upstream: { url: 'http://127.0.0.1:9/mcp', auth: { mode: 'clientCredentials', clientId: 'gw', clientSecret: 's' } } }, /tokenUrl/)
})
