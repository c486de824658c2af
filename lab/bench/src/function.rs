//! A function process under the harness: spawned with `AWS_LAMBDA_RUNTIME_API` pointing
//! at our Runtime API and the variables Lambda sets, its output sent to a log file, its
//! peak resident memory read from `/proc/<pid>/status` (`VmHWM`), stopped on drop.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub struct Function {
    child: Child,
    pub spawned: Instant,
}

impl Function {
    pub fn spawn(cmd: &[String], env: &[(String, String)], runtime: SocketAddr, log: &Path) -> Result<Self> {
        let (program, args) = cmd.split_first().ok_or_else(|| Error::Usage("no function command after --".into()))?;
        let out = File::create(log).map_err(Error::io(format!("creating {}", log.display())))?;
        let err = out.try_clone().map_err(Error::io("log file"))?;
        let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
        let mut command = Command::new(program);
        command
            .args(args)
            .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_bench")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let spawned = Instant::now();
        let child = command.spawn().map_err(Error::io(format!("spawning {program}")))?;
        Ok(Function { child, spawned })
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the process has used so far and its context switches, summed over its
    /// threads (`/proc/PID/task/*/schedstat` and `status`): nanosecond resolution, unlike
    /// the tick counts of `/proc/PID/stat`.
    pub fn cpu_and_switches(&self) -> Option<(Duration, u64)> {
        let (mut cpu_ns, mut switches) = (0u64, 0u64);
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?.flatten() {
            // A thread may end between the listing and the reads: skip it.
            let (Ok(schedstat), Ok(status)) = (
                std::fs::read_to_string(task.path().join("schedstat")),
                std::fs::read_to_string(task.path().join("status")),
            ) else {
                continue;
            };
            cpu_ns += schedstat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
            switches += status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:").or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        Some((Duration::from_nanos(cpu_ns), switches))
    }

    /// Fails when the process has already exited (a crash at init, a bad variable).
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Failed(format!("function exited: {status}"))),
            Err(e) => Err(Error::io("waiting on the function")(e)),
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
