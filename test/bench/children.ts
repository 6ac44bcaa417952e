/** A benchmark's server processes (servers.ts): started by kind, asked for their CPU time. */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

export interface Child {
  child: ChildProcess
  url: string
}

export async function startChild (servers: string, kind: string, target?: string): Promise<Child> {
  const child = fork(servers, target === undefined ? [kind] : [kind, target], { stdio: 'inherit' })
  const [message] = await once(child, 'message') as [{ url: string }]
  return { child, url: message.url }
}

/** The process's CPU time so far, in microseconds. */
export async function cpuOf (server: Child): Promise<number> {
  server.child.send('cpu')
  const [message] = await once(server.child, 'message') as [{ cpu: number }]
  return message.cpu
}
