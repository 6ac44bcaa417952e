/** A raw WebSocket MCP client for tests that send frames by hand: each answer frame, in order. */
import type { Test } from 'tap'
import WebSocket from 'ws'

export interface Frame { id?: unknown, result?: unknown, error?: { code: number, message: string } }

/** Opens `<endpoint>/ws` with the `mcp` subprotocol; `next()` resolves with the next frame. */
export async function wsFrames (t: Test, url: string): Promise<{ socket: WebSocket, next: () => Promise<Frame> }> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, ['mcp'])
  t.teardown(() => socket.terminate())
  const frames: Frame[] = []
  const waiters: Array<() => void> = []
  socket.on('message', (data) => {
    frames.push(JSON.parse(String(data)) as Frame)
    waiters.shift()?.()
  })
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  const next = async (): Promise<Frame> => {
    if (frames.length === 0) await new Promise<void>((resolve) => waiters.push(resolve))
    return frames.shift() as Frame
  }
  return { socket, next }
}
