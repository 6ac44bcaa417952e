/**
 * A TCP relay between two peers that can cut every connection through it at once: how the tests
 * make networks drop streams at arbitrary byte offsets.
 */
import { connect, createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface Cutter {
  /** The target URL, with the relay's port. */
  url: string
  /** Destroys every open connection; returns how many. */
  cut: () => number
  /** Connections opened through the relay so far. */
  opened: () => number
  /**
   * Stops forwarding on the `index`th connection opened (from 0), both ways, without closing it:
   * a peer that went silent. Returns a function that forwards again.
   */
  hold: (index: number) => () => void
  close: () => Promise<void>
}

export async function cutter (t: { teardown (fn: () => unknown): void }, target: string): Promise<Cutter> {
  const url = new URL(target)
  const pairs = new Set<[Socket, Socket]>()
  const byIndex: Array<[Socket, Socket]> = []
  let opened = 0
  const server = createServer((client) => {
    opened++
    const upstream = connect(Number(url.port), url.hostname)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    byIndex.push(pair)
    const drop = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const relayed = new URL(target)
  relayed.port = String((server.address() as AddressInfo).port)
  const state: Cutter = {
    url: relayed.href,
    cut: () => {
      const count = pairs.size
      for (const [a, b] of [...pairs]) {
        a.destroy()
        b.destroy()
      }
      pairs.clear()
      return count
    },
    opened: () => opened,
    hold: (index) => {
      const pair = byIndex[index]
      if (pair === undefined) throw new Error(`no connection ${index} (${byIndex.length} opened)`)
      const [a, b] = pair
      a.unpipe(b)
      b.unpipe(a)
      a.pause()
      b.pause()
      return () => {
        a.pipe(b)
        b.pipe(a)
      }
    },
    close: async () => {
      state.cut()
      await new Promise((resolve) => server.close(resolve))
    }
  }
  t.teardown(() => state.close())
  return state
}
