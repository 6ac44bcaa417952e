/**
 * The CLI as a user runs it, in a child process: starts in front of the demo upstream, serves the
 * real SDK client, and exits 0 on SIGTERM; leaves no child process behind. (How it fails on bad
 * input is in cli-errors.test.ts: each file keeps well inside the per-file timeout under load.)
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { exitOf, startCli } from '../helpers/cli.ts'
import { client, eventually, textOf, upstream } from '../helpers/peers.ts'
import { alive } from '../helpers/stdio.ts'

const STUBBORN = fileURLToPath(new URL('../helpers/stubborn-stdio-server.mjs', import.meta.url))

t.test('--demo starts the gateway in front of the bundled demo server; SIGTERM exits 0', async (t) => {
  const { child, endpoint, output } = await startCli(['--demo', '--port', '0', '--log-level', 'warn'])
  t.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
  const { client: c } = await client(t, endpoint)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'cli' } })), 'cli')
  const [, consoleUrl, key] = /admin console: (\S+) \(admin key for this run: (\S+)\)/.exec(output()) ?? []
  t.match(consoleUrl, /\/admin\/$/, 'the demo serves the admin console')
  const whoami = await fetch(`${consoleUrl as string}api/whoami`, { headers: { authorization: `Bearer ${key as string}` } })
  t.same(await whoami.json(), { name: 'demo-admin' }, 'with the key it printed')
  await c.close()
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, output())
})

t.test('SIGTERM during a long tool call: the call completes, then the process exits 0', async (t) => {
  const { child, endpoint, output } = await startCli(['--demo', '--port', '0', '--log-level', 'warn'])
  const { client: c } = await client(t, endpoint)
  c.onerror = () => {}
  const call = c.callTool({ name: 'wait', arguments: { ms: 1000 } })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const result = await call
  t.equal(textOf(result), 'waited', 'the call in flight completed')
  const [code] = await exited
  t.equal(code, 0, output())
})

t.test('a config file, with flags and environment taking precedence', async (t) => {
  const up = await upstream(t)
  const dir = t.testdir({})
  const file = `${dir}/gateway.json`
  await writeFile(file, JSON.stringify({ upstream: 'http://127.0.0.1:9/never', path: '/from-file', port: 1, logLevel: 'warn' }))
  const { child, endpoint, output } = await startCli(['--config', file, '--port', '0'], { MCP_GATEWAY_UPSTREAM: up.url, MCP_GATEWAY_PATH: '/from-env' })
  t.teardown(() => { child.kill('SIGKILL') })
  t.match(endpoint, /\/from-env$/)
  const { client: c } = await client(t, endpoint)
  t.equal(textOf(await c.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3')
  await c.close()
  child.kill('SIGINT')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, output())
})

t.test('a stdio child that ignores SIGTERM, with a grace longer than the shutdown window, is killed before the CLI exits', async (t) => {
  const file = `${t.testdir({})}/gateway.json`
  await writeFile(file, JSON.stringify({
    upstream: { kind: 'stdio', name: 'stubborn', command: process.execPath, args: [STUBBORN, '--ignore-sigterm'], killGraceMs: 600_000 },
    logLevel: 'warn'
  }))
  const { child, endpoint, output } = await startCli(['--config', file, '--port', '0'])
  t.teardown(() => { child.kill('SIGKILL') })
  const { client: c } = await client(t, endpoint)
  const pid = Number(textOf(await c.callTool({ name: 'pid', arguments: {} })))
  t.ok(Number.isInteger(pid) && alive(pid), `the child ${pid} runs`)
  t.teardown(() => { if (alive(pid)) process.kill(pid, 'SIGKILL') })
  c.onerror = () => {}
  const started = Date.now()
  child.kill('SIGTERM')
  const code = await exitOf(child, 30_000)
  t.equal(code, 0, output())
  t.ok(Date.now() - started < 16_000, `exited within the shutdown window (${Date.now() - started} ms)`)
  // The kernel has the child reaped by init once the CLI is gone: a bounded poll on the pid itself.
  await eventually(() => !alive(pid), 3000).catch(() => {})
  t.notOk(alive(pid), `the child ${pid} is gone`)
})
