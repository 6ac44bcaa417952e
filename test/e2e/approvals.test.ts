/**
 * Human approval of tool calls, end to end: SDK 1.x (2025) and 2.x (2026-07-28) clients whose
 * calls a policy `approve` rule holds; admins who see them on the admin API's feed and queue
 * (arguments redacted) and approve, deny, or let them time out; a client that leaves; an admin on
 * another instance deciding a call held on this one, through Redis; and the admin API's own auth.
 */
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { McpGatewayOptions } from '../../plugins/index.ts'
import { gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient } from '../helpers/eras.ts'
import { redisClient, skipWithoutRedis, REDIS_URL } from '../helpers/redis.ts'
import { adminFeed, adminApi } from '../helpers/admin.ts'
import { postHeaders } from '../helpers/http.ts'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'

const MCP_KEYS = [{ name: 'alice', key: 'alice-key-0123456789abcdef' }]
const ADMINS = [{ name: 'ops-carol', key: 'carol-admin-key-0123456789' }, { name: 'auditor', key: 'auditor-admin-key-0123456789' }]
const CAROL = ADMINS[0]?.key as string
const AUDITOR = ADMINS[1]?.key as string
const RULES = [
  { name: 'big-sums-need-ops', effect: 'approve' as const, when: 'tool.name == "add" && arguments.a > 100.0', approvers: ['ops-*'], timeoutMs: 60_000 },
  { name: 'echo-waits-briefly', effect: 'approve' as const, when: 'tool.name == "echo" && arguments.text == "slow"', timeoutMs: 1000 }
]

async function connect (t: Test, url: string, key: string): Promise<Client> {
  const client = new Client({ name: 'approval-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${key}` } } }))
  t.teardown(() => client.close())
  return client
}

async function setup (t: Test, extra: Partial<McpGatewayOptions> = {}, upstreamUrl?: string): Promise<{ url: string, admin: string, app: Awaited<ReturnType<typeof gateway>>['app'] }> {
  const url = upstreamUrl ?? (await upstream(t)).url
  const gw = await gateway(t, { upstream: { name: 'demo', url }, auth: { apiKeys: { keys: MCP_KEYS } }, policy: { rules: RULES }, admin: { apiKeys: ADMINS }, ...extra })
  return { url: gw.url, admin: gw.url.replace(/\/mcp$/, '/admin'), app: gw.app }
}

t.test('a held call shows on the feed and in the queue, redacted; the approver it names approves it; the call completes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'approvals-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { url, admin, app } = await setup(t, { audit: { file: { path: join(dir, 'audit.jsonl') } } })
  const feed = await adminFeed(t, admin, CAROL)
  const alice = await connect(t, url, MCP_KEYS[0]?.key as string)

  const call = alice.callTool({ name: 'add', arguments: { a: 101, b: 2, apiToken: 'hunter2' } })
  const held = await feed.next('approval-held') as { id: string }
  const { approvals } = await adminApi(admin, CAROL, 'GET', '/approvals').then((res) => res.json() as Promise<{ approvals: Array<Record<string, unknown>> }>)
  t.match(approvals, [{ id: held.id, rule: 'big-sums-need-ops', principal: 'alice', upstream: 'demo', tool: 'add', arguments: { a: 101, b: 2, apiToken: '[redacted]' }, argumentsDigest: /^sha256:/ }])
  t.notOk(JSON.stringify(approvals).includes('hunter2'), 'the secret is not shown')

  const refused = await adminApi(admin, AUDITOR, 'POST', `/approvals/${held.id}/approve`)
  t.equal(refused.status, 403, 'an admin the rule does not name may not decide')
  t.match(await refused.json(), { error: { code: 'MCP_GW_ADMIN_FORBIDDEN', message: /auditor may not decide/ } })
  t.equal((await adminApi(admin, CAROL, 'POST', '/approvals/no-such-id/approve')).status, 404)

  t.equal((await adminApi(admin, CAROL, 'POST', `/approvals/${held.id}/approve`)).status, 200)
  t.equal(textOf(await call), '103', 'approved: the call went on and was answered')
  t.match(await feed.next('approval-decided'), { id: held.id, outcome: 'approved', by: 'ops-carol' })
  t.equal((await adminApi(admin, CAROL, 'POST', `/approvals/${held.id}/deny`)).status, 404, 'a decided call is gone from the queue')
  t.same(app.mcpApprovals.counts, { held: 1, approved: 1, denied: 0, timeout: 0, cancelled: 0 })
  const metrics = await (await fetch(url.replace(/\/mcp$/, '/metrics'))).text()
  t.match(metrics, /mcp_gateway_approvals_total\{outcome="approved"\} 1/)
  t.match(metrics, /mcp_gateway_approvals_pending 0/)

  t.equal(textOf(await alice.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3', 'a call no rule holds goes straight on')
  await app.mcpAudit.flush()
  const records = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(records[0], { tool: 'add', decision: 'approve', rule: 'big-sums-need-ops', approval: 'approved', approver: 'ops-carol', outcome: 'ok' })
})

t.test('denied with a reason, and timed out: the client gets -32055 saying which', async (t) => {
  const { url, admin } = await setup(t)
  const feed = await adminFeed(t, admin, CAROL)
  const alice = await connect(t, url, MCP_KEYS[0]?.key as string)
  const call = alice.callTool({ name: 'add', arguments: { a: 500, b: 1 } }).then(() => undefined, (err: unknown) => err)
  const held = await feed.next('approval-held') as { id: string }
  t.equal((await adminApi(admin, CAROL, 'POST', `/approvals/${held.id}/deny`, { reason: 'not on a Friday' })).status, 200)
  t.match(await call, { code: -32055, message: /ops-carol denied the call: not on a Friday/, data: { rule: 'big-sums-need-ops', effect: 'approve', approval: 'denied', approver: 'ops-carol' } })
  t.match(await feed.next('approval-decided'), { id: held.id, outcome: 'denied', by: 'ops-carol', reason: 'not on a Friday' })

  const started = Date.now()
  await t.rejects(alice.callTool({ name: 'echo', arguments: { text: 'slow' } }), { code: -32055, message: /nobody approved the call within 1 s/, data: { approval: 'timeout', approver: null } })
  t.ok(Date.now() - started >= 900, 'it waited its time')
  t.match(await feed.next('approval-decided'), { outcome: 'timeout' })
  t.same(await (await adminApi(admin, CAROL, 'GET', '/approvals')).json(), { approvals: [] })
})

t.test('a 2026-07-28 call is held and approved; a client that leaves takes its held call out of the queue', async (t) => {
  const { url, admin, app } = await setup(t)
  const feed = await adminFeed(t, admin, CAROL)
  const modern = await modernClient(t, url, { headers: { authorization: `Bearer ${MCP_KEYS[0]?.key as string}` } })
  const call = modern.callTool({ name: 'add', arguments: { a: 200, b: 2 } })
  const held = await feed.next('approval-held') as { id: string, session: unknown }
  t.equal(held.session, null, 'a stateless call has no session')
  await adminApi(admin, CAROL, 'POST', `/approvals/${held.id}/approve`)
  t.equal(textOf(await call), '202')
  t.match(await feed.next('approval-decided'), { id: held.id, outcome: 'approved' })

  const alice = await connect(t, url, MCP_KEYS[0]?.key as string)
  const leaving = new AbortController()
  const left = alice.callTool({ name: 'add', arguments: { a: 300, b: 1 } }, undefined, { signal: leaving.signal }).catch(() => 'left')
  const second = await feed.next('approval-held') as { id: string }
  leaving.abort()
  t.equal(await left, 'left')
  t.match(await feed.next('approval-decided'), { id: second.id, outcome: 'cancelled' })
  t.equal((await adminApi(admin, CAROL, 'POST', `/approvals/${second.id}/approve`)).status, 404, 'nothing left to approve')
  t.equal(app.mcpApprovals.counts.cancelled, 1)
})

t.test('on Redis: a call held on one instance is approved by an admin on another', { skip: await skipWithoutRedis() }, async (t) => {
  const { prefix } = await redisClient(t)
  const store = { type: 'redis' as const, url: REDIS_URL, keyPrefix: prefix }
  // One upstream behind both (a session's upstream session is the same through either).
  const shared = await upstream(t)
  const a = await setup(t, { store }, shared.url)
  const b = await setup(t, { store }, shared.url)
  const feedB = await adminFeed(t, b.admin, CAROL)
  const alice = await connect(t, a.url, MCP_KEYS[0]?.key as string)
  const call = alice.callTool({ name: 'add', arguments: { a: 1000, b: 1 } })
  const held = await feedB.next('approval-held') as { id: string }
  const { approvals } = await (await adminApi(b.admin, CAROL, 'GET', '/approvals')).json() as { approvals: Array<{ id: string }> }
  t.same(approvals.map((c) => c.id), [held.id], 'the other instance lists it')
  t.equal((await adminApi(b.admin, CAROL, 'POST', `/approvals/${held.id}/approve`)).status, 200)
  t.equal(textOf(await call), '1001', 'the holding instance sent it on')
  t.match(await feedB.next('approval-decided'), { id: held.id, outcome: 'approved', by: 'ops-carol' }, 'the other instance hears the decision')
  t.equal((await adminApi(a.admin, CAROL, 'POST', `/approvals/${held.id}/approve`)).status, 404, 'decided once, on every instance')
  t.equal(a.app.mcpApprovals.counts.approved, 1)

  // A cancellation the client's session sends through the other instance ends the call held here.
  const cancelled = alice.callTool({ name: 'add', arguments: { a: 2000, b: 1 } }).then(() => 'answered', () => 'refused')
  const second = await feedB.next('approval-held') as { id: string, session: string, requestId: number }
  const sent = await fetch(b.url, {
    method: 'POST',
    headers: { ...postHeaders(), authorization: `Bearer ${MCP_KEYS[0]?.key as string}`, 'mcp-session-id': second.session, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: second.requestId, reason: 'changed my mind' } })
  })
  t.equal(sent.status, 202, await sent.clone().text())
  t.match(await feedB.next('approval-decided'), { id: second.id, outcome: 'cancelled' }, 'the holding instance ended it')
  t.equal(a.app.mcpApprovals.counts.cancelled, 1)
  void cancelled
})

t.test('the admin API: its own credentials, sessions, upstreams, policy', async (t) => {
  const { url, admin } = await setup(t)
  t.equal((await fetch(`${admin}/api/sessions`)).status, 401)
  t.equal((await adminApi(admin, MCP_KEYS[0]?.key as string, 'GET', '/sessions')).status, 401, 'an MCP key does not open it')
  const page = await fetch(`${admin}/`)
  t.equal(page.status, 200, 'the console page needs no key (it holds no data)')
  t.match(page.headers.get('content-security-policy'), /script-src 'sha256-/)

  const alice = await connect(t, url, MCP_KEYS[0]?.key as string)
  await alice.listTools()
  const { sessions, total } = await (await adminApi(admin, CAROL, 'GET', '/sessions')).json() as { sessions: Array<{ id: string, principal: string }>, total: number }
  t.equal(total, 1)
  t.match(sessions, [{ principal: 'alice', upstream: 'demo', protocolVersion: String }])
  const id = sessions[0]?.id as string
  t.match(await (await adminApi(admin, CAROL, 'GET', `/sessions/${id}`)).json(), { id, principal: 'alice' })
  t.equal((await adminApi(admin, CAROL, 'DELETE', `/sessions/${id}`)).status, 204)
  t.equal((await adminApi(admin, CAROL, 'GET', `/sessions/${id}`)).status, 404)
  await t.rejects(alice.listTools(), 'the ended session is gone for its client')

  t.match(await (await adminApi(admin, CAROL, 'GET', '/upstreams')).json(), { upstreams: [{ name: 'demo', kind: String, health: 'ok' }] })
  t.match(await (await adminApi(admin, CAROL, 'GET', '/policy')).json(), { enabled: true, version: 1, rules: [{ name: 'big-sums-need-ops', effect: 'approve' }, { name: 'echo-waits-briefly' }] })
  t.match(await (await adminApi(admin, CAROL, 'GET', '/whoami')).json(), { name: 'ops-carol' })
  t.equal((await adminApi(admin, CAROL, 'POST', '/approvals/x/approve', { bogus: 1 })).status, 400, 'unknown body keys are refused')
})

t.test('without the admin API an approve rule refuses its calls; options are checked', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, policy: { rules: RULES } })
  const c = new Client({ name: 'no-admin', version: '1.0.0' })
  await c.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
  t.teardown(() => c.close())
  await t.rejects(c.callTool({ name: 'add', arguments: { a: 101, b: 1 } }), { code: -32055, message: /nobody can approve it here/ })
  await t.rejects(gateway(t, { upstream: up.url, admin: {} }), /admin.*needs its own credentials/)
  await t.rejects(gateway(t, { upstream: up.url, auth: { apiKeys: { keys: MCP_KEYS } }, admin: { apiKeys: [{ name: 'x', key: MCP_KEYS[0]?.key as string }] } }), /admin\.apiKeys\[0\]\.key.*also opens the MCP endpoints/)
  await t.rejects(gateway(t, { upstream: up.url, policy: { rules: [{ name: 'r', effect: 'allow', when: 'true', approvers: ['x'] }] } }), /approvers and timeoutMs belong to rules whose effect is "approve"/)
})

t.test('admin JWTs: the admin scope, for the admin API\'s own audience', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const jwk = { ...await exportJWK(publicKey), kid: 'admin-1', alg: 'ES256' }
  const issuer = 'https://idp.example'
  const token = async (scope: string, audience = 'https://gateway.example/admin'): Promise<string> =>
    await new SignJWT({ scope }).setProtectedHeader({ alg: 'ES256', kid: 'admin-1' }).setSubject('dana').setIssuer(issuer).setAudience(audience).setIssuedAt().setExpirationTime('5m').sign(privateKey)
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url, admin: { jwt: { jwks: { keys: [jwk] }, issuer, audience: 'https://gateway.example/admin' } } })
  const admin = gw.url.replace(/\/mcp$/, '/admin')
  t.match(await (await adminApi(admin, await token('mcp:admin openid'), 'GET', '/whoami')).json(), { name: `${issuer}#dana` }, 'the scope opens it; the admin is the token\'s issuer and subject')
  const scoped = await adminApi(admin, await token('openid'), 'GET', '/whoami')
  t.equal(scoped.status, 403, 'without the admin scope: 403')
  t.match(await scoped.json(), { error: { code: 'MCP_GW_INSUFFICIENT_SCOPE' } })
  t.equal((await adminApi(admin, await token('mcp:admin', 'https://gateway.example/mcp'), 'GET', '/whoami')).status, 401, 'a token minted for the MCP endpoint does not open it')
})
