/**
 * SIGTERM to the CLI during a call longer than the drain, with the default shutdown settings: the
 * drain runs out, leases are released, streams end with `retry:`, and the process exits 0 inside
 * its shutdown budget (not killed by the forced-exit timer first). The client then resumes its
 * answer: from the same instance restarted, or at once from a second instance on Redis.
 */
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { CallToolResultSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { startFront } from '../../examples/scale-out/front.ts'
import type { DemoUpstream } from '../../examples/demo-upstream/server.ts'
import { exitOf, startCli, type Started } from '../helpers/cli.ts'
import { eventually, textOf, upstream } from '../helpers/peers.ts'
import { REDIS_URL, redisClient, skipWithoutRedis } from '../helpers/redis.ts'
import { freePort } from '../helpers/ports.ts'

const skip = await skipWithoutRedis()

/** 56 progress reports 250 ms apart: a 14 s call, longer than the default 10 s drain. */
const CALL = { name: 'countdown', arguments: { from: 56, delayMs: 250 } }
const STEPS = Array.from({ length: 56 }, (_, i) => i + 1)

async function configFile (t: Test, up: DemoUpstream, prefix: string, streaming?: object): Promise<string> {
  const file = `${t.testdir({})}/gateway.json`
  await writeFile(file, JSON.stringify({
    upstream: up.url,
    logLevel: 'warn',
    store: { type: 'redis', url: REDIS_URL, keyPrefix: prefix },
    ...(streaming === undefined ? {} : { streaming })
  }))
  return file
}

/** An SDK client that keeps reconnecting while the gateway restarts, and times what it receives. */
async function timedClient (t: Test, url: string): Promise<{ c: Client, arrivals: Array<{ at: number, message: JSONRPCMessage }> }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    reconnectionOptions: { initialReconnectionDelay: 200, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 60 }
  })
  const c = new Client({ name: 'shutdown-test', version: '1.0.0' })
  c.onerror = () => {}
  await c.connect(transport)
  t.teardown(() => c.close())
  const arrivals: Array<{ at: number, message: JSONRPCMessage }> = []
  const deliver = transport.onmessage as Transport['onmessage']
  transport.onmessage = (message: JSONRPCMessage, extra?: Parameters<NonNullable<Transport['onmessage']>>[1]) => {
    arrivals.push({ at: Date.now(), message })
    deliver?.(message, extra)
  }
  return { c, arrivals }
}

function started (t: Test, instance: Started): Started {
  t.teardown(() => { instance.child.kill('SIGKILL') })
  return instance
}

t.test('one instance, SIGTERM during a 14 s call: exit 0 inside the budget; restarted, it gives the client the rest of its answer', { skip }, async (t) => {
  const { prefix } = await redisClient(t)
  const up = await upstream(t, { resumable: true })
  const file = await configFile(t, up, prefix)
  const port = String(await freePort())
  const a = started(t, await startCli(['--config', file, '--port', port]))
  const { c } = await timedClient(t, a.endpoint)
  const progress: number[] = []
  const call = c.callTool(CALL, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress), timeout: 60_000 })
  await eventually(() => progress.length >= 2, 10_000)

  const signalled = Date.now()
  a.child.kill('SIGTERM')
  const code = await exitOf(a.child, 30_000)
  const took = Date.now() - signalled
  t.equal(code, 0, `exit code 0 after ${took} ms\n${a.output()}`)
  t.notMatch(a.output(), /killed by timeout|did not finish within/, 'not cut short by the forced exit')
  t.ok(took >= 9000 && took < 15_000, `drained for the full 10 s, then exited inside the 15 s budget (${took} ms)`)
  t.ok(progress.length < 56, `the call was still running at the exit (${progress.length} reports so far)`)

  const b = started(t, await startCli(['--config', file, '--port', port]))
  t.equal(b.endpoint, a.endpoint)
  t.equal(textOf(await call), 'liftoff', 'the answer arrived from the restarted instance')
  t.same(progress, STEPS, 'every progress report once, in order')
  b.child.kill('SIGTERM')
  t.equal(await exitOf(b.child, 20_000), 0)
})

t.test('two instances on Redis, SIGTERM to the one serving a 14 s call: exit 0, and the other takes over with no gap over 1.5 s', { skip }, async (t) => {
  const { prefix } = await redisClient(t)
  const up = await upstream(t, { resumable: true })
  // Default drain and lease; a short retry hint, so the gap measures the hand-off, not the hint.
  const file = await configFile(t, up, prefix, { retryMs: 100 })
  const [a, b] = await Promise.all([startCli(['--config', file, '--port', '0']), startCli(['--config', file, '--port', '0'])])
  started(t, a)
  started(t, b)
  const front = await startFront({ targets: [a, b].map((i) => new URL(i.endpoint).origin), pick: () => 0 })
  t.teardown(() => front.close())
  const { c, arrivals } = await timedClient(t, `${front.url}/mcp`)
  const progress: number[] = []
  const call = c.callTool(CALL, CallToolResultSchema, { onprogress: (p) => progress.push(p.progress), timeout: 60_000 })
  await eventually(() => progress.length >= 2, 10_000)

  const signalled = Date.now()
  a.child.kill('SIGTERM')
  const exited = exitOf(a.child, 30_000).then((code) => ({ code, took: Date.now() - signalled }))
  t.equal(textOf(await call), 'liftoff', 'the answer arrived')
  t.same(progress, STEPS, 'every progress report once, in order')
  const { code, took } = await exited
  t.equal(code, 0, `A exited 0 after ${took} ms\n${a.output()}`)
  t.ok(took < 15_000, `inside the 15 s budget (${took} ms)`)
  t.ok((front.served[1] as number) > 0, 'B served the rest')
  const during = arrivals.filter((arrival) => arrival.at >= signalled)
  let gap = 0
  for (let i = 1; i < during.length; i++) gap = Math.max(gap, (during[i] as { at: number }).at - (during[i - 1] as { at: number }).at)
  t.ok(gap <= 1500, `longest time without a message during the hand-off: ${gap} ms`)
})
