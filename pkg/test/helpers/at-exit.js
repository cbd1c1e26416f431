// Clean-ups that must run even when a test process ends early (a failed
// assertion, Ctrl-C): private servers stopped by PID, temporary directories.

/** Clean-ups still due, run synchronously if the process exits first. */
const pending = new Set();
let exitHooked = false;

/** Registers `cleanup` (synchronous); returns a function that unregisters it. */
export function atExit(cleanup) {
  if (!exitHooked) {
    exitHooked = true;
    const runAll = () => {
      for (const fn of [...pending]) {
        pending.delete(fn);
        try {
          fn();
        } catch {}
      }
    };
    process.once('exit', runAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(signal, () => {
        runAll();
        process.exit(128 + { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal]);
      });
    }
  }
  pending.add(cleanup);
  return () => pending.delete(cleanup);
}

