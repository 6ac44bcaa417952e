/**
 * One benchmark server per process, so each one's CPU time is its own: the demo upstream, the
 * gateway, or a plain @fastify/http-proxy forwarder. Started by run.ts with fork(); reports its
 * URL, then answers `cpu` messages with its CPU time in microseconds.
 */
import Fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'
import { startDemoUpstream } from '../../examples/demo-upstream/server.ts'
import { createGateway } from '../../examples/gateway/create-gateway.ts'

type Kind = 'upstream' | 'upstream-json' | 'gateway' | 'forwarder'

async function start (kind: Kind, target: string | undefined): Promise<string> {
  if (kind === 'upstream' || kind === 'upstream-json') {
    const up = await startDemoUpstream({ jsonResponse: kind === 'upstream-json' })
    return up.url
  }
  if (target === undefined) throw new Error('target URL required')
  if (kind === 'gateway') {
    const app = await createGateway({ upstream: target, logLevel: false })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return `${address}/mcp`
  }
  const url = new URL(target)
  const app = Fastify({ logger: false })
  await app.register(httpProxy, { upstream: url.origin, prefix: '/mcp', rewritePrefix: url.pathname })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  return `${address}/mcp`
}

const [kind, target] = process.argv.slice(2) as [Kind, string | undefined]
const url = await start(kind, target)
process.on('message', (message: unknown) => {
  if (message === 'cpu') {
    const usage = process.cpuUsage()
    process.send?.({ cpu: usage.user + usage.system, rss: process.memoryUsage.rss() })
  } else if (message === 'exit') {
    process.exit(0)
  }
})
process.send?.({ url })
