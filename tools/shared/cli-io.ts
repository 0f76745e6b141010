/** Where a CLI writes: the process's streams by default, buffers in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Where a progress bar goes (default process.stderr; tests pass a plain sink). */
  progress?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
}

export const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};
