/** Resolves after `ms` milliseconds (0: the next timer turn). */
export const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 2 ms; rejects naming `what` when it stays false for `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}
