/**
 * The package as users get it: `npm pack`, installed from the tarball into a fresh TypeScript app
 * that brings its own `fastify`; the app type-checks against the published types, registers the
 * plugin and serves a real MCP call. The tarball carries no test code, and the MCP SDK and ws are
 * not installed with it (the gateway does not need them at run time; the CLI's --demo says to
 * install the SDK). zod is: the option schemas check options with it.
 */
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { client, textOf, upstream } from '../helpers/peers.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

t.test('packed, installed in a fresh TypeScript app with its own fastify: type-checks and proxies a call', { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-pack-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // prepack builds dist first.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 32 * 1024 * 1024, timeout: 180_000 })
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = (info?.files ?? []).map((file) => file.path)
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'the entry point and its types')
  t.same(files.filter((file) => /(^|\/)test\//.test(file) || /\.test\.(js|ts)$/.test(file)), [], 'no test code in the package')

  const app = join(dir, 'app')
  await run('mkdir', ['-p', app])
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false },
    include: ['app.ts']
  }))
  await writeFile(join(app, 'app.ts'), `import Fastify from 'fastify'
import mcpGateway, { type McpGatewayOptions } from 'fastify-mcp-gateway'

const options: McpGatewayOptions = { upstream: process.env.UPSTREAM as string, metrics: false }
const app = Fastify()
await app.register(mcpGateway, options)
app.get('/sessions', async () => ({ live: await app.mcpSessions.count() }))
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(\`listening \${address}/mcp\\n\`)
process.once('SIGTERM', () => { void app.close() })
`)
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, info?.filename as string), 'fastify@5', '@opentelemetry/api@1', 'typescript@~6.0', '@types/node@20'],
    { cwd: app, maxBuffer: 32 * 1024 * 1024, timeout: 240_000 })
  t.notOk(existsSync(join(app, 'node_modules', '@modelcontextprotocol/sdk')), 'the MCP SDK is not installed with the gateway')
  t.ok(existsSync(join(app, 'node_modules', 'zod')), 'zod is (the option schemas)')

  const checked = await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: app, timeout: 120_000 }).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
  t.equal(checked, '', 'the app type-checks and compiles against the published types')

  // The CLI's --demo needs the SDK, which the package does not bring: it says so and exits 1.
  const cli = join(app, 'node_modules/fastify-mcp-gateway/dist/examples/gateway/cli.js')
  const demo = await run(process.execPath, [cli, '--demo', '--port', '0'], { cwd: app, timeout: 20_000 }).then(() => ({ code: 0, stderr: '' }), (err: { code?: number, stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? '' }))
  t.equal(demo.code, 1, 'the CLI with --demo and no SDK exits 1')
  t.match(demo.stderr, /--demo runs the bundled demo MCP server, which needs @modelcontextprotocol\/sdk .*npm install @modelcontextprotocol\/sdk zod/)

  const up = await upstream(t)
  const child = spawn(process.execPath, ['out/app.js'], { cwd: app, env: { ...process.env, UPSTREAM: up.url }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`the app did not start: ${out}`)), 20_000)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      const match = /^listening (\S+)$/m.exec(out)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    })
    child.once('exit', (code) => reject(new Error(`the app exited with ${String(code)}: ${out}`)))
  })
  const { client: c } = await client(t, endpoint)
  t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: 'from the tarball' } })), 'from the tarball')
  await c.close()
})
