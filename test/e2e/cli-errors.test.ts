/**
 * The CLI given bad input, in a child process: a clear message and exit 1, fast, whether the
 * arguments are wrong or the port is taken (with memory or Redis stores).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { CLI, runCli } from '../helpers/cli.ts'
import { REDIS_URL, skipWithoutRedis } from '../helpers/redis.ts'

const redisSkip = await skipWithoutRedis()

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

t.test('a port already in use: a clear message and exit 1, with memory or Redis stores', async (t) => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const port = String((busy.address() as AddressInfo).port)
  const dir = t.testdir({})
  const redisConfig = `${dir}/redis.json`
  await writeFile(redisConfig, JSON.stringify({ upstream: 'http://127.0.0.1:9/mcp', logLevel: 'warn', store: { type: 'redis', url: REDIS_URL, keyPrefix: 'mcp-gw-test:busy-port:' } }))
  const cases: Array<[string, string[]]> = [
    ['memory stores', ['--upstream', 'http://127.0.0.1:9/mcp', '--port', port, '--log-level', 'warn']],
    ['memory stores and the demo upstream', ['--demo', '--port', port, '--log-level', 'warn']],
    ...(redisSkip === false ? [['Redis stores', ['--config', redisConfig, '--port', port]] as [string, string[]]] : [])
  ]
  for (const [name, args] of cases) {
    const { code, timedOut, output } = await runCli(args, 15_000)
    t.notOk(timedOut, `${name}: the process ended by itself`)
    t.equal(code, 1, `${name}: exit code 1`)
    t.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`), `${name}: the message says why`)
  }
})
