/**
 * Tapes end to end: a session of server-everything (over stdio) recorded through the gateway by a
 * rule, and one started from the admin API; downloaded, replayed by `tape replay` to the SDK
 * client (answers, progress, an unrecorded call refused), and compared with `tape diff`. And the
 * project's own recorded tape of server-everything (test/fixtures), replayed by the CLI command.
 */
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { gateway } from '../helpers/peers.ts'
import { everythingStdio } from '../helpers/published-servers.ts'
import { adminApi } from '../helpers/admin.ts'
import { readTape } from '../../lib/tapes/tape.ts'
import { TapeServer } from '../../lib/tapes/replay.ts'
import { tapeCommand } from '../../examples/gateway/tape-command.ts'

const ADMIN = 'tapes-admin-key-0123456789'
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'everything.tape.jsonl')

async function folder (t: Test): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'tapes-'))
  t.teardown(() => rm(path, { recursive: true, force: true }))
  return path
}

async function connect (t: Test, url: string, name: string): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  t.teardown(() => client.close())
  return client
}

const text = (result: unknown): string => ((result as { content: Array<{ text?: string }> }).content[0]?.text ?? '')

async function run (args: string[]): Promise<{ code: number, out: string }> {
  const out = new PassThrough()
  let written = ''
  out.on('data', (chunk: Buffer) => { written += String(chunk) })
  return { code: await tapeCommand(args, out), out: written }
}

t.test('recorded by a rule and from the admin API, replayed to the SDK client, diffed', async (t) => {
  const dir = await folder(t)
  const gw = await gateway(t, { upstream: everythingStdio('everything'), tapes: { dir: join(dir, 'tapes'), record: [{ clients: ['tape-*'] }] }, admin: { apiKeys: [{ name: 'ops', key: ADMIN }] } })
  const admin = gw.url.replace(/\/mcp$/, '/admin')
  const recorded = await connect(t, gw.url, 'tape-recorder')
  const other = await connect(t, gw.url, 'not-taped')
  const tools = await recorded.listTools()
  const echo = await recorded.callTool({ name: 'echo', arguments: { message: 'hello tape' } })
  await recorded.callTool({ name: 'get-sum', arguments: { a: 1, b: 1, password: 'hunter2' } })
  t.equal(text(await recorded.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })), text(await other.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })))
  let progress = 0
  await recorded.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, CallToolResultSchema, { onprogress: () => { progress++ } })
  t.equal(progress, 3, 'the live call had its progress')

  const listed = await (await adminApi(admin, ADMIN, 'GET', '/tapes')).json() as { tapes: Array<{ id: string, recording: boolean, entries: number }> }
  t.equal(listed.tapes.length, 1, 'only the chosen client\'s session is taped')
  const id = listed.tapes[0]?.id as string
  t.match(listed.tapes[0], { recording: true })
  t.equal((await adminApi(admin, ADMIN, 'POST', `/tapes/${id}/stop`)).status, 200)
  const download = await adminApi(admin, ADMIN, 'GET', `/tapes/${id}`)
  t.equal(download.status, 200)
  const file = join(dir, 'downloaded.tape.jsonl')
  await writeFile(file, await download.text())
  const tape = await readTape(file)
  t.match(tape.header, { tape: 1, upstream: 'everything', client: { name: 'tape-recorder' } })
  t.ok(tape.entries.some((entry) => entry.dir === 'in' && (entry.message as { method?: string }).method === 'initialize'), 'the tape starts with an initialize')
  t.ok(tape.entries.filter((entry) => (entry.message as { method?: string }).method === 'notifications/progress').length >= 3, 'progress is on the tape')
  t.equal((await adminApi(admin, ADMIN, 'GET', '/tapes/..%2Fetc')).status, 404, 'a tape id names a tape, nothing else')
  const raw = await readFile(file, 'utf8')
  t.notOk(raw.includes('hunter2'), 'secrets in arguments are redacted on the tape')
  t.ok(raw.includes('"password":"[redacted]"'))

  // Started from the admin API: the other client's session, from now on.
  const { sessions } = await (await adminApi(admin, ADMIN, 'GET', '/sessions')).json() as { sessions: Array<{ id: string, clientInfo: { name: string } }> }
  const otherSession = sessions.find((s) => s.clientInfo.name === 'not-taped')?.id as string
  const started = await (await adminApi(admin, ADMIN, 'POST', '/tapes', { session: otherSession })).json() as { id: string, recording: boolean }
  t.match(started, { recording: true })
  await other.callTool({ name: 'echo', arguments: { message: 'now taped' } })
  await adminApi(admin, ADMIN, 'POST', `/tapes/${started.id}/stop`)
  const second = await readTape(join(dir, 'tapes', `${started.id}.tape.jsonl`))
  t.ok(second.entries.some((entry) => JSON.stringify(entry.message).includes('now taped')), 'the started tape has the call made after it')

  const replay = new TapeServer(tape, { speed: 0 })
  const url = await replay.listen(0)
  t.teardown(() => replay.close())
  const client = await connect(t, url, 'replayed')
  t.same((await client.listTools()).tools.map((tool) => tool.name), tools.tools.map((tool) => tool.name), 'the recorded tools')
  t.same(await client.callTool({ name: 'echo', arguments: { message: 'hello tape' } }), echo, 'the recorded answer')
  let replayed = 0
  await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, CallToolResultSchema, { onprogress: () => { replayed++ } })
  t.equal(replayed, 3, 'the recorded progress, for the live request\'s token')
  await t.rejects(client.callTool({ name: 'never-recorded', arguments: {} }), { code: -32601, message: /the tape has no answer for tools\/call/ })

  t.match(await run(['diff', file, file]), { code: 0, out: /answer alike/ })
  const edited = join(dir, 'edited.tape.jsonl')
  await writeFile(edited, (await readFile(file, 'utf8')).replace('Echo: hello tape', 'Echo: changed'))
  t.match(await run(['diff', file, edited]), { code: 2, out: /differs: tools\/call .*hello tape[\s\S]*1 difference/ })
})

t.test('the project\'s recorded tape of server-everything, served by `tape replay`', async (t) => {
  let stopServing = (): void => {}
  const stop = new Promise<void>((resolve) => { stopServing = resolve })
  t.teardown(() => { stopServing() })
  const out = new PassThrough()
  const served = new Promise<string>((resolve) => { out.on('data', (chunk: Buffer) => { const match = /served at (\S+)/.exec(String(chunk)); if (match !== null) resolve(match[1] as string) }) })
  const done = tapeCommand(['replay', FIXTURE, '--port', '0', '--speed', '0'], out, stop)
  const client = await connect(t, await served, 'fixture-client')
  t.ok((await client.listTools()).tools.some((tool) => tool.name === 'get-sum'))
  t.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })), /5/)
  await client.close()
  stopServing()
  t.equal(await done, 0, 'it stops when told (SIGINT or SIGTERM from the CLI)')
})

t.test('bad input: not a tape, a bad flag', async (t) => {
  const dir = await folder(t)
  await writeFile(join(dir, 'x.jsonl'), '{"hello":1}\n')
  await t.rejects(run(['replay', join(dir, 'x.jsonl'), '--port', '0']), /not a tape/)
  t.match(await run(['replay']), { code: 1, out: /Usage/ })
  await t.rejects(run(['replay', FIXTURE, '--speed', '-1']), /--speed/)
})
