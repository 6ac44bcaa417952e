/**
 * A stdio child's pipes are bounded both ways: a long stderr line without a newline is logged cut
 * at 8 KiB as soon as it passes the limit (not held in memory until the child exits), and writes
 * to a child that stops reading stdin wait for 'drain' instead of piling up in the gateway.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { StdioChannel } from '../../lib/upstream/stdio.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import type { Logger } from '../../lib/logger.ts'
import { eventually } from '../helpers/peers.ts'
import { alive } from '../helpers/stdio.ts'

const STUBBORN = fileURLToPath(new URL('../helpers/stubborn-stdio-server.mjs', import.meta.url))

function capture (): { log: Logger, lines: Array<{ fields: Record<string, unknown>, msg: string }> } {
  const lines: Array<{ fields: Record<string, unknown>, msg: string }> = []
  const push = (fields: object, msg: string): void => { lines.push({ fields: fields as Record<string, unknown>, msg }) }
  return { lines, log: { debug: push, info: push, warn: push, error: push } }
}

async function start (t: { teardown (fn: () => unknown): void }, args: string[], log: Logger): Promise<StdioChannel> {
  const channel = await StdioChannel.start('stubborn', { command: process.execPath, args: [STUBBORN, ...args], killGraceMs: 500 }, log, 'test')
  t.teardown(() => channel.close())
  return channel
}

const initialize: JsonRpcMessage = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }

t.test('a 10 MB stderr line with no newline is logged cut at 8 KiB while the child still runs', async (t) => {
  const { log, lines } = capture()
  const channel = await start(t, ['--stderr-line-bytes', String(10 * 1024 * 1024)], log)
  const stderrLines = (): Array<{ fields: Record<string, unknown> }> => lines.filter((line) => line.msg === 'stdio upstream stderr')
  await eventually(() => stderrLines().length > 0, 10_000)
  t.ok(alive(channel.pid), 'logged before the child exits (the line was not held to its end)')
  const logged = stderrLines()[0]?.fields
  t.ok(typeof logged?.stderr === 'string' && (logged.stderr as string).length <= 8193, `cut to 8 KiB (${String((logged?.stderr as string | undefined)?.length)} characters)`)
  t.equal(logged?.truncated, true, 'marked as truncated')
  t.equal(stderrLines().length, 1, 'one log line for one stderr line, however long')
})

t.test('a child that stops reading stdin: a burst waits for drain in a bounded queue, then every message is delivered', async (t) => {
  const { log } = capture()
  const channel = await start(t, ['--pause-stdin-ms', '1500'], log)
  const answers = new Map<unknown, JsonRpcMessage>()
  channel.onmessage = (message) => { if ('id' in message) answers.set(message.id, message) }
  channel.send(initialize)
  await eventually(() => answers.has(0))
  // 100 calls of 64 KiB: 6.4 MB, far more than the pipe and the stream's buffer hold.
  const text = 'y'.repeat(64 * 1024)
  const sent: Array<Promise<void>> = []
  for (let id = 1; id <= 100; id++) {
    sent.push(Promise.resolve(channel.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text } } })))
  }
  const stdin = (channel as unknown as { child: { stdin: { writableLength: number } } }).child.stdin
  t.ok(stdin.writableLength <= 256 * 1024, `what waits in the child's stdin stream stays small (${stdin.writableLength} bytes)`)
  await Promise.all(sent)
  await eventually(() => answers.size === 101, 20_000)
  t.pass('every call answered once the child read again')
})

t.test('past the queue\'s bound, send() refuses with a coded error instead of buffering more', async (t) => {
  const { log } = capture()
  const channel = await start(t, ['--pause-stdin-ms', '5000'], log)
  const answers = new Set<unknown>()
  channel.onmessage = (message) => { if ('id' in message) answers.add(message.id) }
  channel.send(initialize)
  await eventually(() => answers.has(0))
  const text = 'z'.repeat(1024 * 1024)
  const outcomes: Array<Promise<unknown>> = []
  for (let id = 1; id <= 40; id++) {
    outcomes.push(Promise.resolve().then(() => channel.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text } } })).then(() => 'sent', (err: unknown) => err))
  }
  const settled = await Promise.race([Promise.all(outcomes.slice(-5)), new Promise((resolve) => setTimeout(resolve, 3000, 'pending'))])
  t.not(settled, 'pending', 'the last sends were refused at once, not queued')
  const refused = (settled as unknown[]).filter((outcome) => (outcome as { code?: string }).code === 'MCP_GW_UPSTREAM_BACKLOG')
  t.equal(refused.length, 5, 'refused with MCP_GW_UPSTREAM_BACKLOG')
  t.match((refused[0] as Error).message, /stubborn is not reading its input/)
})
