/**
 * tools/call over the gateway's WebSocket transport against Streamable HTTP through the same
 * gateway, side by side in interleaved rounds, one session each, with the gateway's CPU per call.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import WebSocket from 'ws'
import { McpLoadClient, median, runLoad, type LoadResult } from './load.ts'

class WsLoadClient {
  private readonly socket: WebSocket
  private readonly waiting = new Map<number, (text: string) => void>()
  private nextId = 1

  private constructor (socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data) => {
      const text = String(data)
      const match = /"id":(\d+)/.exec(text)
      const done = match === null ? undefined : this.waiting.get(Number(match[1]))
      if (done !== undefined) {
        this.waiting.delete(Number((match as RegExpExecArray)[1]))
        done(text)
      }
    })
  }

  static async open (url: string): Promise<WsLoadClient> {
    const socket = new WebSocket(url, 'mcp')
    await once(socket, 'open')
    const client = new WsLoadClient(socket)
    await client.request('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}', 0)
    socket.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    return client
  }

  private async request (text: string, id: number): Promise<string> {
    return await new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.socket.send(text)
    })
  }

  async call (): Promise<boolean> {
    const id = this.nextId++
    const text = await this.request(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"text":"benchmark payload"}}}`, id)
    return text.includes('benchmark payload')
  }

  async close (): Promise<void> {
    this.socket.close()
    await once(this.socket, 'close')
  }
}

interface Sample extends LoadResult {
  cpuPerCall: number
}

export async function benchWebSocket (servers: string, rounds: number, requests: number): Promise<void> {
  const upstream = fork(servers, ['upstream'], { stdio: 'inherit' })
  const [up] = await once(upstream, 'message') as [{ url: string }]
  const gateway = fork(servers, ['gateway-ws', up.url], { stdio: 'inherit' })
  const [gw] = await once(gateway, 'message') as [{ url: string }]
  const cpu = async (): Promise<number> => {
    gateway.send('cpu')
    const [message] = await once(gateway, 'message') as [{ cpu: number }]
    return message.cpu
  }
  const targets: Array<{ name: string, open: (concurrency: number) => Promise<{ call: () => Promise<boolean>, close: () => Promise<void> }> }> = [
    {
      name: 'Streamable HTTP',
      open: async (concurrency) => {
        const client = new McpLoadClient(gw.url, concurrency)
        await client.initialize()
        return { call: async () => await client.call(), close: async () => await client.close() }
      }
    },
    {
      name: 'WebSocket',
      open: async () => {
        const client = await WsLoadClient.open(`${gw.url.replace(/^http/, 'ws')}/ws`)
        return { call: async () => await client.call(), close: async () => await client.close() }
      }
    }
  ]
  process.stdout.write(`\n## tools/call over WebSocket vs Streamable HTTP, same gateway (${rounds} interleaved rounds x ${requests} calls, medians; upstream answers with SSE)\n\n`)
  for (const concurrency of [1, 32]) {
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const target of targets) {
        const client = await target.open(concurrency)
        await runLoad(client.call, 200, concurrency)
        const before = await cpu()
        const result = await runLoad(client.call, requests, concurrency)
        const after = await cpu()
        await client.close()
        samples.get(target.name)?.push({ ...result, cpuPerCall: (after - before) / requests })
      }
    }
    const stat = (name: string, key: keyof Sample): number => median((samples.get(name) ?? []).map((s) => s[key]))
    process.stdout.write(`concurrency ${concurrency}\n| transport | calls/s | p50 ms | p99 ms | gateway CPU µs/call | errors |\n|---|---|---|---|---|---|\n`)
    for (const target of targets) {
      const errors = (samples.get(target.name) ?? []).reduce((sum, s) => sum + s.errors, 0)
      process.stdout.write(`| ${target.name} | ${stat(target.name, 'throughput').toFixed(0)} | ${stat(target.name, 'p50').toFixed(2)} | ${stat(target.name, 'p99').toFixed(2)} | ${stat(target.name, 'cpuPerCall').toFixed(0)} | ${errors} |\n`)
    }
    process.stdout.write(`ratios: WebSocket/HTTP throughput ${(stat('WebSocket', 'throughput') / stat('Streamable HTTP', 'throughput')).toFixed(2)}x, CPU per call ${(stat('WebSocket', 'cpuPerCall') / stat('Streamable HTTP', 'cpuPerCall')).toFixed(2)}x\n\n`)
  }
  for (const child of [gateway, upstream]) {
    child.send('exit')
    await once(child, 'exit')
  }
}
