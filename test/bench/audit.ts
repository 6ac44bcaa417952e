/**
 * `BENCH_ONLY=audit`: what the audit log costs. tools/call through a gateway writing every call to
 * a hash-chained JSONL file (digest of the arguments) against the same gateway without it, same
 * upstream, interleaved rounds: gateway CPU per call, the difference, and its share.
 */
import { compareGateways, startChild as start, stopChildren } from './children.ts'

export async function benchAudit (servers: string, rounds: number, requests: number): Promise<void> {
  const upstream = await start(servers, 'upstream-json')
  const plain = await start(servers, 'gateway', upstream.url)
  const audited = await start(servers, 'gateway-audit', upstream.url)
  console.log('\nAudit log: every tools/call to a hash-chained JSONL file vs off (median of rounds)')
  for (const concurrency of [1, 32]) {
    const { a, b, diff } = await compareGateways(plain, audited, concurrency, rounds, requests)
    console.log(`  c${concurrency}: off ${a.cpu.toFixed(1)} µs CPU/call ${a.rps.toFixed(0)} req/s; on ${b.cpu.toFixed(1)} µs ${b.rps.toFixed(0)} req/s; audit costs ${diff.toFixed(1)} µs/call (median of per-round differences), ${(100 * diff / a.cpu).toFixed(1)}%`)
  }
  await stopChildren(audited, plain, upstream)
}
