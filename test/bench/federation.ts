/**
 * `BENCH_ONLY=federation`: a virtual server over four upstreams, one of them 200 ms late on every
 * POST (federation-servers.ts), against the slow upstream on its own and the first upstream on
 * its own endpoint of the same gateway:
 * - opening a session (the virtual server opens four member sessions in parallel) against the
 *   slow upstream's own `initialize`;
 * - `tools/list` with no cache (a fan-out to four) against the slow upstream's own, and with the
 *   cache warm against one upstream's `tools/list` through the gateway;
 * - `tools/call` through the virtual server against the same call on the upstream's own endpoint:
 *   throughput and the gateway's CPU per call, in interleaved rounds.
 */
import { once } from 'node:events'
import { cpuOf, startChild as start } from './children.ts'
import { McpLoadClient, median } from './load.ts'


/** Milliseconds of each of `count` runs of `step`, one after another. */
async function timed (count: number, step: () => Promise<boolean>): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint()
    if (!await step()) throw new Error('a federation benchmark step failed')
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return times
}

/** Milliseconds of `count` `initialize` requests (each session then ended). */
async function opens (url: string, count: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < count; i++) {
    const client = new McpLoadClient(url, 1)
    await client.initialize()
    times.push(client.initializeMs)
    await client.close()
  }
  return times
}

async function lists (url: string, tool: string, count: number): Promise<number[]> {
  const client = new McpLoadClient(url, 1, tool)
  await client.initialize()
  await client.list()
  const times = await timed(count, async () => await client.list())
  await client.close()
  return times
}

const f = (value: number): string => value.toFixed(1)
const signed = (value: number): string => `${value >= 0 ? '+' : ''}${value.toFixed(1)}`

export async function benchFederation (servers: string, rounds: number, requests: number): Promise<void> {
  const upstreams = await start(servers, 'upstreams-federation')
  const slowUpstream = await start(servers, 'upstream-federation-slow')
  const urls = [...JSON.parse(upstreams.url) as string[], slowUpstream.url]
  const gateway = await start(servers, 'gateway-federation', JSON.stringify(urls))
  const slow = urls[3] as string
  const samples = { slowInitialize: [] as number[], virtualOpen: [] as number[], slowList: [] as number[], coldList: [] as number[], directList: [] as number[], warmList: [] as number[] }
  for (let round = 0; round < rounds; round++) {
    samples.slowInitialize.push(...await opens(slow, 10))
    samples.virtualOpen.push(...await opens(`${gateway.url}/mcp/cold`, 10))
    samples.slowList.push(...await lists(slow, 'echo', 10))
    samples.coldList.push(...await lists(`${gateway.url}/mcp/cold`, 'm1_echo', 10))
    samples.directList.push(...await lists(`${gateway.url}/mcp/direct`, 'echo', 100))
    samples.warmList.push(...await lists(`${gateway.url}/mcp/warm`, 'm1_echo', 100))
  }
  console.log('\nFederation: a virtual server over four upstreams, one 200 ms late (p50 ms)')
  const open = [median(samples.slowInitialize), median(samples.virtualOpen)]
  console.log(`  open a session: slow upstream's own initialize ${f(open[0] as number)}, virtual session (initialize) ${f(open[1] as number)} (${signed((open[1] as number) - (open[0] as number))})`)
  const cold = [median(samples.slowList), median(samples.coldList)]
  console.log(`  tools/list, no cache: slow upstream's own ${f(cold[0] as number)}, virtual ${f(cold[1] as number)} (${signed((cold[1] as number) - (cold[0] as number))})`)
  const warm = [median(samples.directList), median(samples.warmList)]
  console.log(`  tools/list, warm cache: one upstream through the gateway ${f(warm[0] as number)}, virtual ${f(warm[1] as number)} (${((warm[1] as number) / (warm[0] as number)).toFixed(2)}x)`)

  for (const concurrency of [1, 32]) {
    const rows = { direct: { rps: [] as number[], cpu: [] as number[] }, virtual: { rps: [] as number[], cpu: [] as number[] } }
    for (let round = 0; round < rounds; round++) {
      for (const [name, path, tool] of [['direct', '/mcp/direct', 'echo'], ['virtual', '/mcp/warm', 'm1_echo']] as const) {
        const client = new McpLoadClient(`${gateway.url}${path}`, concurrency, tool)
        await client.initialize()
        await client.run(200, concurrency)
        const before = await cpuOf(gateway)
        const result = await client.run(requests, concurrency)
        const after = await cpuOf(gateway)
        await client.close()
        if (result.errors > 0) throw new Error(`${name}: ${result.errors} failed calls`)
        rows[name].rps.push(result.throughput)
        rows[name].cpu.push((after - before) / requests)
      }
    }
    const [dr, vr, dc, vc] = [median(rows.direct.rps), median(rows.virtual.rps), median(rows.direct.cpu), median(rows.virtual.cpu)]
    console.log(`  tools/call c${concurrency}: upstream's own endpoint ${f(dr)} req/s ${f(dc)} µs CPU/call; virtual ${f(vr)} req/s ${f(vc)} µs CPU/call (throughput ${(vr / dr).toFixed(2)}x, CPU ${(vc / dc).toFixed(2)}x)`)
  }
  for (const server of [gateway, upstreams, slowUpstream]) {
    server.child.send('exit')
    await once(server.child, 'exit')
  }
}
