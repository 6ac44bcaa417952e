/**
 * `BENCH_ONLY=identity`: what `tokenExchange` costs once its token is cached, two ways.
 * - Between processes: tools/call through two gateways with the same inbound JWT auth, one
 *   sending the upstream static headers, one an exchanged token (cached per principal after the
 *   first call), interleaved rounds; beside it two identical static gateways (A/A), the noise floor.
 * - In process: the credentials step alone (`authorization()` with the token held), CPU per call.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { TokenExchange } from '../../lib/upstream-auth/token-exchange.ts'
import { compareGateways, startChild as start, stopChildren } from './children.ts'

const ISSUER = 'https://issuer.bench'

/** A token endpoint that exchanges anything: the bench measures the gateway, not an AS. */
async function tokenEndpoint (): Promise<{ url: string, close: () => void, exchanges: () => number }> {
  let exchanges = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      exchanges++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ access_token: `exchanged-${exchanges}`, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, close: () => server.close(), exchanges: () => exchanges }
}

/** CPU µs per call of the credentials step with the exchanged token held. */
async function inProcess (calls: number, url: string): Promise<number> {
  const exchange = new TokenExchange({ upstream: 'bench', tokenUrl: url, client: { clientId: 'gateway', clientSecret: 's', method: 'client_secret_basic' }, refreshBeforeMs: 30_000, maxPrincipals: 10_000 })
  const caller = { id: `${ISSUER}#alice`, token: 'subject', claims: { exp: Math.floor(Date.now() / 1000) + 3600 } }
  await exchange.authorization(caller)
  let length = 0
  for (let i = 0; i < 100_000; i++) length += (exchange.authorization(caller) as string).length
  const before = process.cpuUsage()
  for (let i = 0; i < calls; i++) length += (exchange.authorization(caller) as string).length
  const used = process.cpuUsage(before)
  if (length === 0) throw new Error('unreachable')
  return (used.user + used.system) / calls
}

export async function benchIdentity (servers: string, rounds: number, requests: number): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwks = { keys: [{ ...await exportJWK(publicKey), kid: 'bench', alg: 'ES256' }] }
  const token = await new SignJWT({ scope: 'mcp' }).setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer(ISSUER).setSubject('alice').setAudience('https://gateway.bench/mcp').setIssuedAt().setExpirationTime('2h').sign(privateKey)
  const endpoint = await tokenEndpoint()
  const upstream = await start(servers, 'upstream-json')
  const spec = JSON.stringify({ upstream: upstream.url, issuer: ISSUER, jwks, tokenUrl: endpoint.url })
  const plain = await start(servers, 'gateway-jwt', spec)
  const twin = await start(servers, 'gateway-jwt', spec)
  const exchanging = await start(servers, 'gateway-exchange', spec)
  const headers = { authorization: `Bearer ${token}` }
  console.log('\nUpstream identity: tokenExchange with its token cached vs static upstream headers, same inbound JWT auth (median of rounds)')
  for (const concurrency of [1, 32]) {
    const floor = await compareGateways(plain, twin, concurrency, rounds, requests, headers)
    const { a, b, diff } = await compareGateways(plain, exchanging, concurrency, rounds, requests, headers)
    console.log(`  c${concurrency}: static ${a.cpu.toFixed(1)} µs CPU/call ${a.rps.toFixed(0)} req/s; exchanged ${b.cpu.toFixed(1)} µs ${b.rps.toFixed(0)} req/s; exchanged - static ${diff.toFixed(1)} µs/call (${(100 * diff / a.cpu).toFixed(1)}%); two identical gateways differ by ${floor.diff.toFixed(1)} µs (the noise floor)`)
  }
  console.log(`  token exchanges for every call of every round: ${endpoint.exchanges()} (one per principal)`)
  console.log(`  in process, the credentials step alone with the token held: ${(await inProcess(1_000_000, endpoint.url) * 1000).toFixed(0)} ns CPU/call`)
  await stopChildren(plain, twin, exchanging, upstream)
  endpoint.close()
}
