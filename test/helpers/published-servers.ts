/**
 * The published MCP servers the federation tests put behind a virtual server, started from
 * node_modules (devDependencies; nothing is downloaded at test time): server-everything over
 * stdio and over Streamable HTTP (a child of its own, so a test can kill and restart it on its
 * port), server-memory and server-filesystem over stdio.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { freePort } from './ports.ts'

interface Teardown {
  teardown (fn: () => unknown): void
}

// From the project's root (where tests and benches run), built or not.
const bin = (name: string): string => join(process.cwd(), 'node_modules', '@modelcontextprotocol', name, 'dist', 'index.js')

export const EVERYTHING = bin('server-everything')
export const MEMORY = bin('server-memory')
export const FILESYSTEM = bin('server-filesystem')

export function everythingStdio (name: string, env: Record<string, string> = {}) {
  return { name, kind: 'stdio' as const, command: process.execPath, args: [EVERYTHING, 'stdio'], env }
}

export function memoryStdio (name: string, file: string) {
  return { name, kind: 'stdio' as const, command: process.execPath, args: [MEMORY], env: { MEMORY_FILE_PATH: file } }
}

export function filesystemStdio (name: string, root: string) {
  return { name, kind: 'stdio' as const, command: process.execPath, args: [FILESYSTEM, root] }
}

export interface EverythingHttp {
  url: string
  child: ChildProcess
  /** SIGKILLs the server; resolves once it is gone. */
  kill: () => Promise<void>
  /** Starts it again on the same port. */
  start: () => Promise<void>
}

/** server-everything over Streamable HTTP in a child process, on a port of its own. */
export async function everythingHttp (t: Teardown): Promise<EverythingHttp> {
  const port = await freePort()
  const running: EverythingHttp = {
    url: `http://127.0.0.1:${port}/mcp`,
    child: undefined as unknown as ChildProcess,
    kill: async () => {
      const child = running.child
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
    start: async () => {
      const child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] })
      running.child = child
      await new Promise<void>((resolve, reject) => {
        let err = ''
        const timer = setTimeout(() => { reject(new Error(`server-everything did not start: ${err}`)) }, 20_000)
        child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          err += chunk
          if (err.includes('listening on port')) {
            clearTimeout(timer)
            resolve()
          }
        })
        child.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`server-everything exited with ${String(code)}: ${err}`))
        })
      })
    }
  }
  await running.start()
  t.teardown(() => running.kill())
  return running
}
