import { create } from 'zustand';

/** The last command the engine refused, shown in the status bar (role=alert). */
export const useProblem = create<{ message: string | null }>(() => ({ message: null }));

export function report(err: unknown): void {
  useProblem.setState({ message: err instanceof Error ? err.message : String(err) });
}
