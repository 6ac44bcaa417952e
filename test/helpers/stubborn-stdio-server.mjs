#!/usr/bin/env node
/**
 * A tiny stdio MCP server in plain JavaScript (it starts in milliseconds, with no dependencies),
 * for tests of how the gateway stops children. Flags:
 *   --ignore-sigterm        traps SIGTERM and keeps running (and keeps running after stdin ends)
 *   --pause-stdin-ms N      reads nothing on stdin for N ms after the first message
 *   --stderr-line-bytes N   at start, writes one stderr line of N bytes with no newline
 * Tools: `pid` (the server's pid), `echo` (returns `text`).
 */
import { createInterface } from 'node:readline'

const args = process.argv.slice(2)
const flag = (name) => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}

if (args.includes('--ignore-sigterm')) {
  process.on('SIGTERM', () => { process.stderr.write('stubborn server: ignoring SIGTERM\n') })
  // Alive even when the gateway closes stdin.
  setInterval(() => {}, 1 << 30)
}
const stderrBytes = Number(flag('--stderr-line-bytes') ?? 0)
if (stderrBytes > 0) {
  const chunk = 'x'.repeat(64 * 1024)
  let left = stderrBytes
  while (left > 0) {
    process.stderr.write(left >= chunk.length ? chunk : chunk.slice(0, left))
    left -= chunk.length
  }
}
const pauseMs = Number(flag('--pause-stdin-ms') ?? 0)

const send = (message) => { process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`) }

function answer (message) {
  if (message.id === undefined) return
  switch (message.method) {
    case 'initialize':
      send({ id: message.id, result: { protocolVersion: message.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'stubborn', version: '1.0.0' } } })
      return
    case 'ping':
      send({ id: message.id, result: {} })
      return
    case 'tools/list':
      send({ id: message.id, result: { tools: [{ name: 'pid', inputSchema: { type: 'object' } }, { name: 'echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } }] } })
      return
    case 'tools/call': {
      const text = message.params.name === 'pid' ? String(process.pid) : String(message.params.arguments?.text ?? '')
      send({ id: message.id, result: { content: [{ type: 'text', text }] } })
      return
    }
    default:
      send({ id: message.id, error: { code: -32601, message: 'Method not found' } })
  }
}

let paused = false
const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  answer(JSON.parse(line))
  if (pauseMs > 0 && !paused) {
    paused = true
    // Stop reading: the gateway's writes pile up in the pipe until it is full.
    lines.pause()
    process.stdin.pause()
    setTimeout(() => { lines.resume(); process.stdin.resume() }, pauseMs)
  }
})
