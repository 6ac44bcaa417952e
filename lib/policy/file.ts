/**
 * A policy kept in a file of its own: read and compiled at start, and again whenever it changes
 * (file-system events on its folder, which see an editor's rename-into-place, and a poll for file
 * systems that send none). A file that does not load (bad JSON, an unknown key, a rule that does
 * not compile) leaves the policy in force as it is. Each instance watches its own file; on Redis,
 * nothing is shared (a deployment ships the same file to every instance).
 */
import { watch, watchFile, unwatchFile, readFileSync, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { invalid, parseOptions } from '../options.ts'
import { Policy, PolicyCompileError } from './policy.ts'
import { policyFileSchema } from './spec-schema.ts'

/** The policy a file holds; throws an option error naming the file (and the rule, and where). */
export function policyFromText (text: string, file: string): Policy {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw invalid(`policy file ${file}`, `is not JSON (${(err as Error).message})`)
  }
  const spec = parseOptions(policyFileSchema, `policy file ${file}`, value)
  return compiled(() => new Policy(spec), `policy file ${file}`)
}

export function readPolicyFile (file: string): { policy: Policy, text: string } {
  const text = readFileSync(file, 'utf8')
  return { policy: policyFromText(text, file), text }
}

/** A rule that does not compile, as the option error the config check gives. */
export function compiled (make: () => Policy, at: string): Policy {
  try {
    return make()
  } catch (err) {
    if (err instanceof PolicyCompileError) throw invalid(at, err.message)
    throw err
  }
}

/** Events come in bursts (an editor writes, renames, touches): one look after they settle. */
const SETTLE_MS = 50

export class PolicyFileWatcher {
  private readonly file: string
  private readonly pollMs: number
  private last: string | undefined
  private readonly onLoad: (policy: Policy) => void
  private readonly onError: (err: Error) => void
  private watcher: FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  /** This watcher's own poll listener: `unwatchFile` without it would stop every watcher of the file. */
  private readonly poll = (): void => { this.soon() }
  /** The file was missing at the last look (reported once; its return is a change). */
  private missing = false

  /** `loaded`: the text the policy in force came from (a look that finds it unchanged does nothing). */
  constructor (file: string, pollMs: number, loaded: string, onLoad: (policy: Policy) => void, onError: (err: Error) => void) {
    this.file = file
    this.pollMs = pollMs
    this.last = loaded
    this.onLoad = onLoad
    this.onError = onError
  }

  start (): void {
    const name = basename(this.file)
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) this.soon()
      })
      // Events stopped (the folder went, say): the poll still serves.
      this.watcher.on('error', () => { this.watcher?.close() })
    } catch {
      // No events on this file system: the poll alone serves.
    }
    watchFile(this.file, { interval: this.pollMs, persistent: false }, this.poll)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.watcher?.close()
    unwatchFile(this.file, this.poll)
  }

  private soon (): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.look() }, SETTLE_MS)
    this.timer.unref()
  }

  /** Loads the file if its text changed; a file that does not load is reported once per text. */
  look (): void {
    if (this.closed) return
    let text: string
    try {
      text = readFileSync(this.file, 'utf8')
    } catch (err) {
      // Missing after events settled: said once; the policy in force stays, and the file's
      // return (whatever it holds) is loaded.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (!this.missing) this.onError(new Error(`policy file ${this.file} is missing`))
        this.missing = true
        this.last = undefined
        return
      }
      this.onError(err as Error)
      return
    }
    this.missing = false
    if (text === this.last) return
    this.last = text
    let policy: Policy
    try {
      policy = policyFromText(text, this.file)
    } catch (err) {
      this.onError(err as Error)
      return
    }
    this.onLoad(policy)
  }
}
