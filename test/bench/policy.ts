/**
 * `BENCH_ONLY=policy`: what a 20-rule CEL policy (policy-rules.ts, half of it on arguments) costs.
 * - `tools/call` through the gateway with the policy against the same gateway without it, same
 *   upstream, interleaved rounds: gateway CPU per call, the difference in µs.
 * - The same, in process: the policy's interceptors on one tools/call request (the end-to-end
 *   difference above is within this shared machine's noise; this is not).
 * - Filtering a 500-tool `tools/list` answer by the same rules, in process: the list interceptor
 *   alone, median of repeated runs.
 */
import { compareGateways, startChild as start, stopChildren } from './children.ts'
import { median } from './load.ts'
import { BENCH_POLICY } from './policy-rules.ts'
import { InterceptorChain } from '../../lib/interceptors/chain.ts'
import { PolicyGate } from '../../lib/policy/gate.ts'
import { Policy } from '../../lib/policy/policy.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'


const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/** Milliseconds to filter one 500-tool list answer (the median of `runs`). */
async function listFiltering (runs: number): Promise<{ ms: number, kept: number }> {
  const chain = new InterceptorChain({}, new PolicyGate(new Policy({ rules: BENCH_POLICY })).interceptors())
  const tools = Array.from({ length: 500 }, (_, i) => ({ name: i % 10 === 0 ? `admin_tool_${i}` : `tool_${i}`, description: `Tool ${i}`, inputSchema: { type: 'object' }, annotations: { readOnlyHint: i % 2 === 0 } }))
  const response = { jsonrpc: '2.0', id: 1, result: { tools } } as JsonRpcMessage
  const request = { jsonrpc: '2.0' as const, id: 1, method: 'tools/list' }
  const principal = { id: 'carl', scopes: ['contractor'], method: 'jwt' as const, claims: {} }
  const ctx = { direction: 'upstream_to_client' as const, kind: 'response' as const, session: undefined, upstream: 'bench', principal, headers: { 'user-agent': 'bench' }, config: undefined, log: quiet, request }
  const times: number[] = []
  let kept = 0
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const outcome = await chain.run(response, ctx)
    times.push(performance.now() - t0)
    if (outcome.kind === 'forward') kept = ((outcome.message as unknown as { result: { tools: unknown[] } }).result.tools).length
  }
  return { ms: median(times.slice(Math.floor(runs / 5))), kept }
}

/** µs the policy's interceptors add to one tools/call's request, in process (median of batches). */
async function gateCost (batches: number, calls: number): Promise<number> {
  const ruled = new InterceptorChain({}, new PolicyGate(new Policy({ rules: BENCH_POLICY })).interceptors())
  const plain = new InterceptorChain({}, [])
  const message = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'benchmark payload' } } }
  const headers = { host: '127.0.0.1:3000', 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'bench', 'mcp-protocol-version': '2025-11-25', 'content-length': '120', connection: 'keep-alive' }
  const ctx = { direction: 'client_to_upstream' as const, session: undefined, upstream: 'bench', principal: { id: 'alice', scopes: ['read'], method: 'jwt' as const, claims: { team: 'sre' } }, headers, config: undefined, log: quiet, request: undefined }
  const batch = async (chain: InterceptorChain): Promise<number> => {
    const t0 = performance.now()
    for (let i = 0; i < calls; i++) await chain.run(message, ctx)
    return (performance.now() - t0) * 1000 / calls
  }
  const diffs: number[] = []
  await batch(ruled)
  await batch(plain)
  for (let i = 0; i < batches; i++) diffs.push(await batch(ruled) - await batch(plain))
  return median(diffs)
}

export async function benchPolicy (servers: string, rounds: number, requests: number): Promise<void> {
  const upstream = await start(servers, 'upstream-json')
  const plain = await start(servers, 'gateway', upstream.url)
  const ruled = await start(servers, 'gateway-policy', upstream.url)
  console.log('\nPolicy: 20 CEL rules (10 on arguments) vs none, tools/call through the gateway (median of rounds)')
  for (const concurrency of [1, 32]) {
    const { a, b, diff } = await compareGateways(plain, ruled, concurrency, rounds, requests)
    console.log(`  c${concurrency}: no policy ${a.cpu.toFixed(1)} µs CPU/call ${a.rps.toFixed(0)} req/s; policy ${b.cpu.toFixed(1)} µs ${b.rps.toFixed(0)} req/s; policy costs ${(b.cpu - a.cpu).toFixed(1)} µs/call (median of per-round differences ${diff.toFixed(1)})`)
  }
  console.log(`  the policy's interceptors on one tools/call, in process: ${(await gateCost(9, 20_000)).toFixed(2)} µs (median of 9 batches of 20,000, policy minus an empty chain)`)
  const list = await listFiltering(200)
  console.log(`  filtering a 500-tool tools/list by the 20 rules: ${list.ms.toFixed(3)} ms (median of 200; ${list.kept} of 500 kept)`)
  await stopChildren(ruled, plain, upstream)
}
