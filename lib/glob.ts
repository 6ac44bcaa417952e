/**
 * Name globs (`*` stands for any run of characters, line terminators included; every other
 * character stands for itself), matched without regular expressions. Globs come from the
 * gateway's configuration but the names they are tested on come from clients (tool names,
 * principal ids), so matching must stay linear in the name: a `^.*x.*$` regex backtracks
 * quadratically or worse, and one 1 MiB name would stall the event loop for minutes.
 *
 * A glob is split at its stars into literal segments. The first must start the name, the last
 * must end it, and those between are found in order, each at its leftmost place after the one
 * before: taking the leftmost occurrence never loses a match (any later one leaves less room for
 * what follows), so there is no backtracking. Cost: one `indexOf` per segment over the part of
 * the name not yet consumed, at most O(name length × glob length), in practice linear.
 */

/** Tests names against one or more globs (a name matches when any glob does). */
export interface GlobMatcher {
  test (name: string): boolean
}

interface Compiled {
  /** Exact name when the glob has no star. */
  exact: string | undefined
  head: string
  tail: string
  /** Non-empty segments between the first and last star, in order. */
  middle: string[]
}

function compile (glob: string): Compiled {
  const parts = glob.split('*')
  if (parts.length === 1) return { exact: glob, head: '', tail: '', middle: [] }
  return {
    exact: undefined,
    head: parts[0] as string,
    tail: parts[parts.length - 1] as string,
    middle: parts.slice(1, -1).filter((part) => part.length > 0)
  }
}

function matches (glob: Compiled, name: string): boolean {
  if (glob.exact !== undefined) return name === glob.exact
  const { head, tail, middle } = glob
  if (name.length < head.length + tail.length || !name.startsWith(head) || !name.endsWith(tail)) return false
  // Middle segments must fit between the head and the tail, without overlapping either.
  let at = head.length
  const end = name.length - tail.length
  for (const segment of middle) {
    const found = name.indexOf(segment, at)
    if (found === -1 || found + segment.length > end) return false
    at = found + segment.length
  }
  return true
}

/** Whether `name` matches `glob`. For repeated tests, compile once with `globMatcher`. */
export function globMatch (glob: string, name: string): boolean {
  return matches(compile(glob), name)
}

/** A matcher for a list of globs, compiled once. An empty list matches nothing. */
export function globMatcher (globs: string | readonly string[]): GlobMatcher {
  const compiled = (typeof globs === 'string' ? [globs] : globs).map(compile)
  if (compiled.length === 1) {
    const only = compiled[0] as Compiled
    return { test: (name) => matches(only, name) }
  }
  return { test: (name) => compiled.some((glob) => matches(glob, name)) }
}
