/**
 * `BENCH_ONLY=audit`: what the audit log costs, two ways.
 * - Between processes: tools/call through a gateway writing every call to a hash-chained JSONL file
 *   (digest of the arguments) against the same gateway without it, same upstream, interleaved
 *   rounds; beside it the same comparison of two identical gateways (A/A), which is the noise floor
 *   of this machine: a difference below it is not measured.
 * - In process: the audit code alone (an exchange's record begun, answered, queued; batches
 *   encoded, chained and written to a real file, 125 records a write as at ~2,500 calls/s), CPU per
 *   record: what the log adds to a call, without the noise of two processes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditFile } from '../../lib/audit/file-sink.ts'
import { AuditLog } from '../../lib/audit/log.ts'
import { ExchangeAudit } from '../../lib/audit/exchange-audit.ts'
import { DEFAULT_REDACT } from '../../lib/audit/record.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import { compareGateways, startChild as start, stopChildren } from './children.ts'

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

/** CPU µs per audited tools/call of the audit code alone. */
async function inProcess (records: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-audit-inproc-'))
  try {
    const { file, head } = await AuditFile.open({ path: join(dir, 'audit.jsonl'), maxBytes: 1024 * 1024 * 1024, keep: 2 })
    const log = new AuditLog({ file, head, logRecords: false, log: quiet, methods: ['tools/call'], arguments: 'digest', redact: DEFAULT_REDACT, queueLimit: 1_000_000, flushMs: 50 })
    const scope = { principal: undefined, session: 'EwY_11CpZ2bT1kq0m7l8q9r0s1t2u3v4', upstream: 'demo', memberOf: undefined }
    const run = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const request = { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'add', arguments: { a: i, b: 2 } } } as JsonRpcMessage
        const audit = ExchangeAudit.begin(log, [request], scope) as ExchangeAudit
        audit.answered({ jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: String(i + 2) }] } } as JsonRpcMessage)
        if (i % 125 === 124) await log.flush()
      }
      await log.flush()
    }
    await run(20_000)
    const before = process.cpuUsage()
    await run(records)
    const used = process.cpuUsage(before)
    await log.close()
    return (used.user + used.system) / records
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export async function benchAudit (servers: string, rounds: number, requests: number): Promise<void> {
  const upstream = await start(servers, 'upstream-json')
  const plain = await start(servers, 'gateway', upstream.url)
  const twin = await start(servers, 'gateway', upstream.url)
  const audited = await start(servers, 'gateway-audit', upstream.url)
  console.log('\nAudit log: every tools/call to a hash-chained JSONL file vs off (median of rounds)')
  for (const concurrency of [1, 32]) {
    const floor = await compareGateways(plain, twin, concurrency, rounds, requests)
    const { a, b, diff } = await compareGateways(plain, audited, concurrency, rounds, requests)
    console.log(`  c${concurrency}: off ${a.cpu.toFixed(1)} µs CPU/call ${a.rps.toFixed(0)} req/s; on ${b.cpu.toFixed(1)} µs ${b.rps.toFixed(0)} req/s; on - off ${diff.toFixed(1)} µs/call (${(100 * diff / a.cpu).toFixed(1)}%); two identical gateways differ by ${floor.diff.toFixed(1)} µs (the noise floor)`)
  }
  await stopChildren(audited, twin, plain, upstream)
  const perRecord = await inProcess(100_000)
  console.log(`  in process: the audit code costs ${perRecord.toFixed(1)} µs CPU per audited call (record, digest, chain, batched file write)`)
}
