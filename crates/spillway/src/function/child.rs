//! Starting function processes so that none outlives spillway.
//!
//! A function process left behind by a spillway that was killed (kill -9, OOM) keeps its
//! port, its memory and possibly a half-done invocation, and nothing will ever stop it.
//! On Linux each one is therefore started with a parent-death signal (SIGKILL): the
//! kernel kills it the moment spillway is gone.
//!
//! The kernel sends that signal when the *thread* that forked the child exits, not the
//! process. Tokio's worker and blocking threads come and go (an idle blocking thread
//! exits after a while), so every function process is forked by one dedicated spawner
//! thread that lives as long as spillway does.

use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// One process to start on the spawner thread.
struct SpawnRequest {
    command: Command,
    /// The runtime the child is registered with (its reaper and exit notification).
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

/// The spawner thread's queue. The sender is never dropped, so the thread never exits.
static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnRequest>>> = OnceLock::new();

fn spawner() -> Option<&'static mpsc::Sender<SpawnRequest>> {
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            let started = std::thread::Builder::new()
                .name("spillway-spawner".into())
                .spawn(move || {
                    for mut request in rx {
                        let _runtime = request.runtime.enter();
                        let _ = request.reply.send(request.command.spawn());
                    }
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no spawner thread; function processes start without a parent-death signal");
                    None
                }
            }
        })
        .as_ref()
}

/// Starts `command` as a function process that dies with spillway. Must be called
/// within a Tokio runtime (the child is registered with it).
pub async fn spawn(mut command: Command) -> std::io::Result<Child> {
    die_with_parent(&mut command);
    let Some(spawner) = spawner() else {
        return command.spawn();
    };
    let (reply, answer) = oneshot::channel();
    let request = SpawnRequest {
        command,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    if let Err(mpsc::SendError(request)) = spawner.send(request) {
        // The spawner is gone (it cannot be, its sender is static): start it here.
        let mut command = request.command;
        return command.spawn();
    }
    answer
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread stopped")))
}

/// Has the kernel SIGKILL the child when its parent (the spawner thread) is gone.
///
/// Why `unsafe`, and why it is sound: the parent-death signal must be set by the child
/// itself, between fork and exec, which only `pre_exec` (an unsafe API) allows. The
/// alternative, wrapping the command in util-linux's `setpriv --pdeathsig KILL`, depends
/// on a program that may be missing and cannot close the race below. The closure is
/// async-signal-safe as `pre_exec` requires: raw system calls through rustix (prctl and
/// getppid), no allocation (errors are plain errno values), no lock. If spillway died
/// between fork and prctl, the signal would never come; the closure sees that its parent
/// changed and fails the exec, so no orphan is left running.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};
    let spillway = getpid();
    // SAFETY: the closure only makes system calls that are async-signal-safe (see above).
    unsafe {
        command.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            if getppid() != Some(spillway) {
                // No allocation here: an error from an errno is not boxed.
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// Elsewhere there is no parent-death signal; processes are stopped on clean shutdown.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
