/**
 * The same end-to-end flow for all four client/upstream era pairings, with real peers on both
 * sides: SDK 1.x (2025-era) and SDK 2.x (2026-07-28) clients and servers, through the gateway.
 * tools/list, tools/call, tools/call with progress, an elicitation round trip, a list change.
 */
import t, { type Test } from 'tap'
import { CallToolResultSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { client, eventually, gateway, textOf, upstream } from '../helpers/peers.ts'
import { modernClient, modernUpstream } from '../helpers/eras.ts'

interface Peer {
  serverName: () => string | undefined
  tools: () => Promise<string[]>
  call: (name: string, args: Record<string, unknown>, onprogress?: (progress: number) => void) => Promise<{ text: string, structured: unknown }>
  changes: string[][]
  refreshTools: () => Promise<string[]>
}

async function legacyPeer (t: Test, url: string): Promise<Peer> {
  const { client: c } = await client(t, url, { onElicit: () => ({ ok: true }) })
  const changes: string[][] = []
  const peer: Peer = {
    serverName: () => c.getServerVersion()?.name,
    tools: async () => (await c.listTools()).tools.map((tool) => tool.name),
    call: async (name, args, onprogress) => {
      const result = await c.callTool({ name, arguments: args }, CallToolResultSchema, onprogress === undefined ? undefined : { onprogress: (p) => onprogress(p.progress) })
      return { text: textOf(result), structured: result.structuredContent }
    },
    changes,
    refreshTools: async () => await peer.tools()
  }
  // A 2025 client hears of list changes unsolicited, and asks again.
  c.setNotificationHandler(ToolListChangedNotificationSchema, async () => { changes.push(await peer.tools()) })
  return peer
}

async function modernPeer (t: Test, url: string): Promise<Peer> {
  const changes: string[][] = []
  const c = await modernClient(t, url, { onElicit: () => ({ ok: true }), onToolsChanged: (names) => changes.push(names) })
  return {
    serverName: () => c.getServerVersion()?.name,
    tools: async () => (await c.listTools()).tools.map((tool) => tool.name),
    call: async (name, args, onprogress) => {
      const result = await c.callTool({ name, arguments: args }, onprogress === undefined ? undefined : { onprogress: (p) => onprogress(p.progress) })
      return { text: textOf(result), structured: result.structuredContent }
    },
    changes,
    refreshTools: async () => (await c.listTools()).tools.map((tool) => tool.name)
  }
}

const PAIRINGS = [
  { client: '2025', upstream: '2025' },
  { client: '2025', upstream: '2026' },
  { client: '2026', upstream: '2025' },
  { client: '2026', upstream: '2026' }
] as const

for (const pairing of PAIRINGS) {
  t.test(`${pairing.client} client, ${pairing.upstream} upstream`, async (t) => {
    const url = pairing.upstream === '2025' ? (await upstream(t)).url : (await modernUpstream(t)).url
    const gw = await gateway(t, { upstream: url })
    const peer = pairing.client === '2025' ? await legacyPeer(t, gw.url) : await modernPeer(t, gw.url)
    t.equal(peer.serverName(), pairing.upstream === '2025' ? 'demo-upstream' : 'modern-upstream')
    t.ok((await peer.tools()).includes('countdown'), 'tools/list')
    t.same((await peer.call('add', { a: 19, b: 23 })).structured, { sum: 42 }, 'tools/call')
    const progress: number[] = []
    t.equal((await peer.call('countdown', { from: 5, delayMs: 5 }, (p) => progress.push(p))).text, 'liftoff')
    t.same(progress, [1, 2, 3, 4, 5], 'progress, in order, before the answer')
    t.equal((await peer.call('confirm', { question: 'proceed?' })).text, 'confirmed', 'an elicitation round trip')
    await peer.call('grow', { name: `new_${pairing.client}_${pairing.upstream}` })
    await eventually(() => peer.changes.some((names) => names.includes(`new_${pairing.client}_${pairing.upstream}`)), 5000)
    t.pass('a list change reached the client')
  })
}
