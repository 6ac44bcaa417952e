/**
 * `npm run conformance`: the official MCP conformance suite (server scenarios, suite `all`) run
 * against the fixture server directly and through the gateway, side by side. Fails when the
 * gateway passes fewer checks than the direct run, or fails a check the direct run passes.
 *
 * The suite needs Node 22 (it calls fs.globSync): `.ci/conformance` holds it and the suite, apart
 * from the project, so Node 22 never shadows the project's own Node in npm scripts.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGateway } from '../../examples/gateway/create-gateway.ts'
import { startFixtureServer } from './fixture-server.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SUITE = join(ROOT, '.ci/conformance/node_modules')
const NODE22 = join(SUITE, '.bin/node')
const CLI = join(SUITE, '@modelcontextprotocol/conformance/dist/index.js')

interface Check { id: string, name: string, status: string, errorMessage?: string }

async function runSuite (url: string): Promise<Map<string, Check>> {
  const cwd = mkdtempSync(join(tmpdir(), 'mcp-conformance-'))
  await new Promise<void>((resolve) => {
    const child = spawn(NODE22, [CLI, 'server', '--url', url, '--suite', 'all', '--output-dir', 'results'], { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
    // Exit status says whether every check passed; the comparison below is what counts here.
    child.once('exit', () => resolve())
  })
  const checks = new Map<string, Check>()
  const results = join(cwd, 'results')
  for (const dir of readdirSync(results)) {
    const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T.*$/, '')
    for (const check of JSON.parse(readFileSync(join(results, dir, 'checks.json'), 'utf8')) as Check[]) {
      checks.set(`${scenario} / ${check.id}`, check)
    }
  }
  return checks
}

const count = (checks: Map<string, Check>, status: string): number => [...checks.values()].filter((c) => c.status === status).length

const fixture = await startFixtureServer()
const gateway = await createGateway({ upstream: fixture.url, logLevel: false })
const address = await gateway.listen({ host: '127.0.0.1', port: 0 })
const through = `${address.replace('127.0.0.1', 'localhost')}/mcp`
const direct = await runSuite(fixture.url)
const proxied = await runSuite(through)
await gateway.close()
await fixture.close()

const regressions = [...direct].filter(([key, check]) => check.status === 'SUCCESS' && proxied.get(key)?.status !== 'SUCCESS')
process.stdout.write('\n| target | SUCCESS | FAILURE | WARNING | checks |\n|---|---|---|---|---|\n')
for (const [name, checks] of [['direct', direct], ['through the gateway', proxied]] as const) {
  process.stdout.write(`| ${name} | ${count(checks, 'SUCCESS')} | ${count(checks, 'FAILURE')} | ${count(checks, 'WARNING')} | ${checks.size} |\n`)
}
for (const [key, check] of proxied) {
  if (check.status === 'FAILURE') process.stdout.write(`gateway FAILURE ${key}: ${check.errorMessage ?? ''}\n`)
}
for (const [key] of regressions) process.stdout.write(`REGRESSION ${key}: passes direct, not through the gateway\n`)
const ok = count(proxied, 'SUCCESS') >= count(direct, 'SUCCESS') && regressions.length === 0
process.stdout.write(ok ? 'conformance: the gateway passes every check the direct run passes\n' : 'conformance: FAILED\n')
process.exitCode = ok ? 0 : 1
