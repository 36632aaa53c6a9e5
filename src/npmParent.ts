/**
 * A process started by npm (`npm start`, `npx leasehold …`) lives as long as npm does. npm
 * 11 passes a SIGTERM on to the shell it runs a script or a bin in (`sh -c …`), and that
 * shell dies without passing it on: node, re-parented, would go on serving (or holding a
 * lease) with nothing left to stop it. npm start execs node, so npm signals it directly;
 * npx cannot. So, under npm, a change of parent process is taken as the SIGTERM it stands
 * for: the process's own SIGTERM handlers (graceful shutdown, resigning a held lease) run,
 * or, without any, it ends as a SIGTERM ends it. Started any other way (a shell, nohup,
 * systemd, a container), a process outlives its parent as usual.
 */

const CHECK_EVERY_MS = 500;
let watching = false;

/** Starts the watch, once per process; nothing when not started by npm. */
export function stopWithNpm(env: NodeJS.ProcessEnv = process.env): void {
  if (watching || !env.npm_lifecycle_event) return;
  watching = true;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, CHECK_EVERY_MS);
  timer.unref();
}
