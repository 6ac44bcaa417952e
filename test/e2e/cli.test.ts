/**
 * The CLI as a user runs it, in a child process: starts in front of the demo upstream, serves the
 * real SDK client, and exits 0 on SIGTERM.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { CLI, startCli } from '../helpers/cli.ts'
import { client, textOf, upstream } from '../helpers/peers.ts'

t.test('--demo starts the gateway in front of the bundled demo server; SIGTERM exits 0', async (t) => {
  const { child, endpoint, output } = await startCli(['--demo', '--port', '0', '--log-level', 'warn'])
  t.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
  const { client: c } = await client(t, endpoint)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'cli' } })), 'cli')
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

t.test('bad input to the CLI fails fast with a message', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /no upstream/],
    [['--upstream', 'nope'], /"upstream"/],
    [['--upstream', 'http://127.0.0.1:9/mcp', '--port', 'x'], /--port: not a port number/],
    [['--config', '/nonexistent/gateway.json'], /cannot read/],
    [['--frobnicate'], /frobnicate/]
  ]
  for (const [args, message] of cases) {
    const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const [code] = await once(child, 'exit')
    t.equal(code, 1, args.join(' '))
    t.match(stderr, message, args.join(' '))
  }
})
