//! The `code_interpreter` tool: runs Python code in a child process with limits.
//!
//! Each call gets a fresh private temporary directory as its working directory and
//! `HOME`, and runs `python3 -I main.py` there with:
//!
//! - a cleared environment: only `PATH`, `LANG`, `HOME` and two Python settings, so
//!   no secret of the server's environment reaches the code;
//! - rlimits on CPU time, address space, written file size and core dumps, set in
//!   the child before `exec`;
//! - a new network namespace (no interfaces but a down loopback) when the kernel
//!   permits it; when it does not, the server logs so once and the code runs with the
//!   server's network;
//! - a wall-clock timeout, after which the whole process group is killed;
//! - stdout and stderr each capped; the rest is read and dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    /// Wall-clock time before the run is killed.
    pub timeout: Duration,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Bytes kept of stdout and of stderr each.
    pub output_bytes: usize,
}

/// Default wall-clock timeout of a run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for CodeLimits {
    fn default() -> Self {
        CodeLimits {
            timeout: DEFAULT_TIMEOUT,
            cpu_seconds: 10,
            memory_bytes: 512 * 1024 * 1024,
            output_bytes: 16 * 1024,
        }
    }
}

/// What a run produced; serialised as the tool output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeOutcome {
    pub stdout: String,
    pub stderr: String,
    /// The exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if any.
    pub signal: Option<i32>,
    /// `timeout`, `cpu` or `memory` when a limit stopped the code.
    pub limit: Option<String>,
    /// True when stdout or stderr was longer than the cap and was cut.
    pub truncated: bool,
    /// True when the code ran without network access.
    pub network_isolated: bool,
}

impl CodeOutcome {
    /// True when the code exited with status 0 and hit no limit.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.limit.is_none()
    }
}

/// Finds `python3` on the server's `PATH`.
pub fn find_python() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_file())
}

/// Runs `code`. The error explains why it could not start.
pub async fn run(code: &str, limits: &CodeLimits) -> Result<CodeOutcome, String> {
    let python = find_python()
        .ok_or("python3 is not installed on the server (not found on its PATH); install it")?;
    let dir = WorkDir::create()?;
    std::fs::write(dir.path().join("main.py"), code)
        .map_err(|err| format!("cannot write the code to a temporary file: {err}"))?;
    let isolated = network_isolation_permitted();
    let mut command = tokio::process::Command::new(&python);
    command
        .arg("-I")
        .arg("main.py")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    sandbox::confine(&mut command, limits, isolated);
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", python.display()))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let cap = limits.output_bytes;
    let readers = async { tokio::join!(read_capped(stdout, cap), read_capped(stderr, cap)) };
    let waited = tokio::time::timeout(limits.timeout, async {
        let (out, err) = readers.await;
        (child.wait().await, out, err)
    })
    .await;
    let (status, (stdout, out_cut), (stderr, err_cut), timed_out) = match waited {
        Ok((status, out, err)) => (status.ok(), out, err, false),
        Err(_) => {
            sandbox::kill_group(&child);
            let _ = child.kill().await;
            (None, (String::new(), false), (String::new(), false), true)
        }
    };
    Ok(outcome(
        status,
        stdout,
        stderr,
        out_cut || err_cut,
        timed_out,
        isolated,
    ))
}

fn outcome(
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
    truncated: bool,
    timed_out: bool,
    network_isolated: bool,
) -> CodeOutcome {
    let exit_code = status.and_then(|s| s.code());
    let signal = status.and_then(sandbox::signal_of);
    let limit = if timed_out {
        Some("timeout")
    } else if signal == Some(sandbox::SIGXCPU) {
        Some("cpu")
    } else if stderr.contains("MemoryError") || signal == Some(sandbox::SIGKILL) {
        Some("memory")
    } else {
        None
    };
    CodeOutcome {
        stdout,
        stderr,
        exit_code,
        signal,
        limit: limit.map(str::to_owned),
        truncated,
        network_isolated,
    }
}

/// Reads a pipe to its end, keeping the first `cap` bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> (String, bool) {
    let Some(mut pipe) = pipe else {
        return (String::new(), false);
    };
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buffer = [0u8; 8192];
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..read.min(room)]);
        cut |= read > room;
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}

/// A private temporary directory, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<WorkDir, String> {
        let name = crate::server::ids::new_id("assisters-code-");
        let path = std::env::temp_dir().join(name);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|err| {
            format!(
                "cannot create a temporary directory {}: {err}",
                path.display()
            )
        })?;
        Ok(WorkDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %err, "cannot remove a code directory");
        }
    }
}

/// Whether this process may create a network namespace; checked once, in a
/// short-lived thread (a namespace change affects only the calling thread), and
/// logged when it may not.
pub fn network_isolation_permitted() -> bool {
    static PERMITTED: OnceLock<bool> = OnceLock::new();
    *PERMITTED.get_or_init(|| {
        let permitted = std::thread::spawn(sandbox::probe_network_namespace)
            .join()
            .unwrap_or(false);
        if permitted {
            tracing::info!("code_interpreter runs code in a new network namespace (no network)");
        } else {
            tracing::warn!(
                "code_interpreter cannot create a network namespace here (not permitted); \
                 code it runs has the server's network access"
            );
        }
        permitted
    })
}

#[cfg(unix)]
mod sandbox {
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::resource::{Resource, setrlimit};
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    use super::CodeLimits;

    pub const SIGXCPU: i32 = Signal::SIGXCPU as i32;
    pub const SIGKILL: i32 = Signal::SIGKILL as i32;
    /// Largest file the code may write.
    const FILE_BYTES: u64 = 64 * 1024 * 1024;

    pub fn probe_network_namespace() -> bool {
        unshare(CloneFlags::CLONE_NEWNET).is_ok()
    }

    pub fn signal_of(status: std::process::ExitStatus) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(&status)
    }

    /// Puts the child in its own process group and sets its limits before `exec`.
    #[allow(unsafe_code)]
    pub fn confine(command: &mut tokio::process::Command, limits: &CodeLimits, isolate: bool) {
        let cpu = limits.cpu_seconds;
        let memory = limits.memory_bytes;
        command.process_group(0);
        // SAFETY: the closure runs in the forked child before `exec`, where only
        // async-signal-safe work is allowed. It allocates nothing, takes no locks and
        // only makes the `setrlimit` and `unshare` system calls on values copied in
        // beforehand; every error is returned as an `io::Error` built from an errno.
        unsafe {
            command.pre_exec(move || {
                setrlimit(Resource::RLIMIT_CPU, cpu, cpu.saturating_add(1))?;
                setrlimit(Resource::RLIMIT_AS, memory, memory)?;
                setrlimit(Resource::RLIMIT_FSIZE, FILE_BYTES, FILE_BYTES)?;
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                if isolate {
                    unshare(CloneFlags::CLONE_NEWNET)?;
                }
                Ok(())
            });
        }
    }

    /// Kills the child's whole process group, so code that started processes of its
    /// own does not outlive the timeout.
    pub fn kill_group(child: &tokio::process::Child) {
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
mod sandbox {
    use super::CodeLimits;

    pub const SIGXCPU: i32 = -1;
    pub const SIGKILL: i32 = -2;

    pub fn probe_network_namespace() -> bool {
        false
    }

    pub fn signal_of(_status: std::process::ExitStatus) -> Option<i32> {
        None
    }

    // NOTE: without rlimits on this platform, only the timeout and the output cap apply.
    pub fn confine(_command: &mut tokio::process::Command, _limits: &CodeLimits, _isolate: bool) {}

    pub fn kill_group(_child: &tokio::process::Child) {}
}
