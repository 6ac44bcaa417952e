/** A benchmark's server processes (servers.ts): started by kind, asked for their CPU time. */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { McpLoadClient, median } from './load.ts'

export interface Child {
  child: ChildProcess
  url: string
}

export async function startChild (servers: string, kind: string, target?: string): Promise<Child> {
  const child = fork(servers, target === undefined ? [kind] : [kind, target], { stdio: 'inherit' })
  const [message] = await once(child, 'message') as [{ url: string }]
  return { child, url: message.url }
}

/** The process's CPU time so far, in microseconds. */
export async function cpuOf (server: Child): Promise<number> {
  server.child.send('cpu')
  const [message] = await once(server.child, 'message') as [{ cpu: number }]
  return message.cpu
}

export interface Compared {
  /** Median CPU µs per call of each, and the median of the per-round differences (b - a). */
  a: { cpu: number, rps: number }
  b: { cpu: number, rps: number }
  diff: number
}

/**
 * Two gateways in front of the same upstream, measured in interleaved rounds (a, b, a, b, ...), so
 * the shared machine's drift falls on both: gateway CPU per tools/call and throughput.
 */
export async function compareGateways (a: Child, b: Child, concurrency: number, rounds: number, requests: number, headers: Record<string, string> = {}): Promise<Compared> {
  const cpu = { a: [] as number[], b: [] as number[] }
  const rps = { a: [] as number[], b: [] as number[] }
  for (let round = 0; round < rounds; round++) {
    for (const [name, server] of [['a', a], ['b', b]] as const) {
      const client = new McpLoadClient(server.url, concurrency, 'echo', headers)
      await client.initialize()
      await client.run(200, concurrency)
      const before = await cpuOf(server)
      const result = await client.run(requests, concurrency)
      const after = await cpuOf(server)
      await client.close()
      if (result.errors > 0) throw new Error(`${name}: ${result.errors} failed calls`)
      cpu[name].push((after - before) / requests)
      rps[name].push(result.throughput)
    }
  }
  const diffs = cpu.a.map((value, i) => (cpu.b[i] as number) - value)
  return { a: { cpu: median(cpu.a), rps: median(rps.a) }, b: { cpu: median(cpu.b), rps: median(rps.b) }, diff: median(diffs) }
}

/** Ends the children, waiting for each to exit. */
export async function stopChildren (...children: Child[]): Promise<void> {
  for (const server of children) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}
