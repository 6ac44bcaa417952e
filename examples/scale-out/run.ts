#!/usr/bin/env node
/**
 * Two gateway processes on one Redis behind one round-robin front, in front of the demo upstream:
 *
 *   npm run build && node dist/examples/scale-out/run.js
 *
 * Connect an MCP client to the front (http://127.0.0.1:3000/mcp by default); stop either gateway
 * (its pid is printed) and the client goes on through the other. Redis: REDIS_URL, default
 * redis://127.0.0.1:6379. Ports: FRONT_PORT (3000); the gateways and the upstream take free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDemoUpstream } from '../demo-upstream/server.ts'
import { startFront } from './front.ts'

const CLI = fileURLToPath(new URL(`../gateway/cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

function startGateway (config: string): Promise<{ child: ChildProcess, endpoint: string }> {
  const child = spawn(process.execPath, [...process.execArgv, CLI, '--config', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let output = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      const match = /connect your MCP client to (\S+)/.exec(output)
      if (match?.[1] !== undefined) resolve({ child, endpoint: match[1] })
    })
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}:\n${output}`)))
  })
}

const upstream = await startDemoUpstream({ resumable: true })
const config = join(await mkdtemp(join(tmpdir(), 'mcp-gw-')), 'gateway.json')
await writeFile(config, JSON.stringify({
  upstream: upstream.url,
  logLevel: 'warn',
  store: { type: 'redis', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: 'mcp-gw-example:' }
}))
const gateways = await Promise.all([startGateway(config), startGateway(config)])
const front = await startFront({ targets: gateways.map((g) => new URL(g.endpoint).origin), port: Number(process.env.FRONT_PORT ?? 3000) })
process.stdout.write(`gateways: ${gateways.map((g) => `${g.endpoint} (pid ${g.child.pid})`).join(', ')}\n` +
  `connect your MCP client to ${front.url}/mcp (round-robin over both; Ctrl-C stops everything)\n`)

const stop = async (): Promise<void> => {
  for (const g of gateways) g.child.kill('SIGTERM')
  await front.close()
  await upstream.close()
  process.exit(0)
}
process.once('SIGINT', () => { void stop() })
process.once('SIGTERM', () => { void stop() })
