/**
 * The pieces of upstream identity that need no server: sealing (AES-256-GCM, bound to its store
 * key, keys rotated), the token cache (one fetch for concurrent callers, a refused token dropped
 * only if it is still the held one, expiry with its margin), and a 2026 retry's consent state
 * taken off before the request goes upstream.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Sealer, keysFromEnvironment } from '../../lib/upstream-auth/sealed.ts'
import { TokenCache } from '../../lib/upstream-auth/token-cache.ts'
import { CONSENT_STATE, consentAnswers, withoutConsentState } from '../../lib/upstream-auth/consent.ts'
import { GatewayErrors } from '../../lib/errors.ts'
import { MemoryTokenStore } from '../../lib/upstream-auth/token-store.ts'

const key = (): string => randomBytes(32).toString('base64')

t.test('sealed values open only under their own store key, and only with a key that is still held', async (t) => {
  const [k1, k2] = [key(), key()]
  const sealer = new Sealer([k1])
  const sealed = sealer.seal('{"accessToken":"secret"}', 't:up:alice')
  t.notMatch(sealed, /secret/, 'nothing in the clear')
  t.equal(sealer.open(sealed, 't:up:alice'), '{"accessToken":"secret"}')
  t.equal(sealer.open(sealed, 't:up:bob'), undefined, 'copied under another principal\'s key: does not open')
  const parts = sealed.split('.')
  parts[3] = Buffer.from('tampered').toString('base64url')
  t.equal(sealer.open(parts.join('.'), 't:up:alice'), undefined, 'tampered: does not open')
  const rotated = new Sealer([k2, k1])
  t.equal(rotated.open(sealed, 't:up:alice'), '{"accessToken":"secret"}', 'an older key still opens what it sealed')
  t.ok(rotated.stale(sealed))
  t.notOk(rotated.stale(rotated.seal('x', 'k')))
  t.equal(new Sealer([k2]).open(sealed, 't:up:alice'), undefined, 'a retired key\'s values are gone')
  t.throws(() => new Sealer([]), /MCP_GATEWAY_TOKEN_KEYS/)
  t.throws(() => new Sealer(['c2hvcnQ=']), /32 bytes/)
  t.same(keysFromEnvironment({ MCP_GATEWAY_TOKEN_KEYS: ` ${k1}, ${k2} ,` }), [k1, k2])
})

t.test('the token cache: one fetch for concurrent callers; expiry with its margin; a refused token dropped once', async (t) => {
  let now = 1_000_000
  const cache = new TokenCache({ max: 10, refreshBeforeMs: 30_000, now: () => now })
  let fetches = 0
  const held: Array<() => void> = []
  // Every fetch waits to be released, so callers pile up on the first (a second fetch fails the count, not the run).
  const release = (): void => { for (const resolve of held.splice(0)) resolve() }
  const fetch = async (): Promise<{ accessToken: string, expiresAt: number }> => {
    const n = ++fetches
    await new Promise<void>((resolve) => { held.push(resolve) })
    return { accessToken: `tok${n}`, expiresAt: now + 60_000 }
  }
  const waiting = Promise.all(Array.from({ length: 50 }, async () => await cache.get('alice', fetch)))
  release()
  t.same(new Set(await waiting), new Set(['tok1']))
  t.equal(fetches, 1, 'fifty callers, one fetch')
  t.equal(cache.peek('alice'), 'tok1', 'held: read without a promise')
  now += 31_000
  t.equal(cache.peek('alice'), undefined, 'inside the margin before expiry: fetched anew')
  const next = cache.get('alice', fetch)
  release()
  t.equal(await next, 'tok2')
  cache.drop('alice', 'tok1')
  t.equal(cache.peek('alice'), 'tok2', 'a refusal of an older token leaves the newer one')
  cache.drop('alice', 'tok2')
  t.equal(cache.peek('alice'), undefined)
  const failing = cache.get('bob', async () => { throw new Error('endpoint down') })
  await t.rejects(failing, /endpoint down/)
  t.equal(cache.peek('bob'), undefined, 'a failed fetch leaves nothing')
})

t.test('consent answers by era; a retry\'s consent state comes off before the upstream', async (t) => {
  const err = Object.assign(new GatewayErrors.CONSENT_REQUIRED('files'), { data: { elicitations: [{ mode: 'url', elicitationId: 'e1', url: 'https://as/authorize', message: 'm' }] } })
  const prompt = { url: 'https://as/authorize', elicitationId: 'e1' }
  const request = { jsonrpc: '2.0' as const, id: 3, method: 'tools/call', params: { name: 'read' } }
  const [legacy] = consentAnswers(err, prompt, [request, { jsonrpc: '2.0', method: 'notifications/x' }], false)
  t.match(legacy, { id: 3, error: { code: -32042, data: { elicitations: [{ mode: 'url', url: 'https://as/authorize', elicitationId: 'e1' }] } } })
  const capable = { ...request, params: { ...request.params, _meta: { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } } } } }
  const [modern] = consentAnswers(err, prompt, [capable], true)
  t.match(modern, { id: 3, result: { resultType: 'input_required', requestState: `${CONSENT_STATE}e1`, inputRequests: { e1: { method: 'elicitation/create', params: { mode: 'url', url: 'https://as/authorize' } } } } })
  const retry = { ...request, params: { ...request.params, requestState: `${CONSENT_STATE}e1`, inputResponses: { e1: { action: 'accept' }, other: { action: 'decline' } } } }
  t.same(withoutConsentState(retry), { ...request, params: { name: 'read', inputResponses: { other: { action: 'decline' } } } }, 'only the gateway\'s own answer goes')
  t.equal(withoutConsentState({ ...request, params: { name: 'read', requestState: 'the-upstream-s' } }), undefined, 'an upstream\'s own requestState is left alone')
  const odd = { ...request, params: { name: 'read', requestState: retry.params.requestState, inputResponses: ['not', 'a', 'map'] } }
  t.strictSame(withoutConsentState(odd), { ...request, params: { name: 'read', inputResponses: ['not', 'a', 'map'] } }, 'answers that are not a map go on as sent')
})

t.test('the memory token store: lifetimes, take once, keys by prefix', async (t) => {
  const store = new MemoryTokenStore()
  await store.set('t:a:1', 'v1', 60_000)
  await store.set('t:a:2', 'v2', 60_000)
  await store.set('t:b:1', 'v3', 60_000)
  t.same((await store.keys('t:a:', 10)).sort(), ['t:a:1', 't:a:2'])
  t.equal((await store.keys('t:a:', 1)).length, 1, 'at most the limit')
  t.equal(await store.take('t:a:1'), 'v1')
  t.equal(await store.take('t:a:1'), undefined, 'taken once')
  t.ok(await store.delete('t:b:1'))
  t.notOk(await store.delete('t:b:1'))
})

t.test('per-user OAuth: concurrent requests of a user whose token is near expiry share one refresh', async (t) => {
  const { createServer } = await import('node:http')
  const { UpstreamIdentity } = await import('../../lib/upstream-auth/identity.ts')
  const { UserOAuth } = await import('../../lib/upstream-auth/user-oauth.ts')
  let refreshes = 0
  const held: Array<() => void> = []
  let arrived: (() => void) | undefined
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, code_challenge_methods_supported: ['S256'] }))
      return
    }
    req.resume()
    const n = ++refreshes
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: `new-${n}`, token_type: 'Bearer', expires_in: 300 }))
    }
    // The first is answered only once the test lets it (every caller has joined by then); any
    // other at once, so a missing single-flight fails the count rather than hanging.
    if (n > 1) return answer()
    held.push(answer)
    arrived?.()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const identity = new UpstreamIdentity({ store: new MemoryTokenStore(), sealer: new Sealer([key()]), callbackUrl: 'http://127.0.0.1:9/cb', flowTtlMs: 60_000, tokenTtlMs: 600_000 })
  const oauth = new UserOAuth('files', 'http://127.0.0.1:9/mcp', { mode: 'oauth', clientId: 'gw', clientSecret: 's', clientAuthMethod: 'client_secret_basic', refreshBeforeMs: 60_000, authorizationServer: issuer }, identity)
  await identity.saveToken('files', 'alice', { accessToken: 'old', refreshToken: 'r1', expiresAt: Date.now() + 1000 })
  const first = new Promise<void>((resolve) => { arrived = resolve })
  const calls = Promise.all(Array.from({ length: 10 }, async () => await oauth.authorization({ id: 'alice' })))
  await first
  for (const release of held.splice(0)) release()
  t.same(new Set(await calls), new Set(['Bearer new-1']), 'every caller got the refreshed token')
  t.equal(refreshes, 1, 'one refresh for ten callers')
  t.equal((await identity.loadToken('files', 'alice'))?.refreshToken, 'r1', 'a server that does not rotate refresh tokens: the old one kept')

  // A user with no token asking five times at once: one sign-in, one URL.
  const prompts = await Promise.all(Array.from({ length: 5 }, async () => await identity.prompt('files', 'bob')))
  t.equal(new Set(prompts.map((prompt) => prompt.url)).size, 1, 'concurrent prompts share one sign-in')
  t.same(await identity.prompt('files', 'bob'), prompts[0], 'and a later one finds it')
})
