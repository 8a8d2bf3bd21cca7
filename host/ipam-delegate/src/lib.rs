//! Delegation to an IPAM plugin (host-local, dhcp, whereabouts, ...): the
//! plugin is found in `CNI_PATH`, run with the CNI variables of the call
//! and the network config on stdin, and its answer or error returned.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use cni_protocol::{codes, CniError};
use rustix::event::{PollFd, PollFlags, Timespec};
use serde_json::Value;

/// How long an IPAM plugin may take before it is killed.
pub const IPAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The parts of the CNI call that the delegate sees.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub cni_args: &'a str,
    pub cni_path: &'a [String],
}

/// Finds `plugin` in the CNI_PATH directories.
pub fn find_plugin(plugin: &str, cni_path: &[String]) -> Result<PathBuf, CniError> {
    cni_path
        .iter()
        .map(|dir| Path::new(dir).join(plugin))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("ipam.type: plugin {plugin:?} not found in CNI_PATH"),
                format!("searched {}", cni_path.join(":")),
            )
        })
}

/// Runs the IPAM plugin named by `network_config.ipam.type` and returns its
/// stdout parsed as JSON (`Value::Null` when it printed nothing, as DEL may).
pub fn exec(call: &Call<'_>, network_config: &Value) -> Result<Value, CniError> {
    let plugin = network_config["ipam"]["type"]
        .as_str()
        .ok_or_else(|| CniError::invalid_config("ipam.type: required to delegate IPAM"))?;
    exec_plugin(plugin, call, network_config)
}

/// The spec versions `plugin` supports: its answer to VERSION, asked as
/// libcni asks (`{"cniVersion": "1.1.0"}` on stdin).
pub fn supported_versions(plugin: &str, cni_path: &[String]) -> Result<Vec<String>, CniError> {
    let call = Call {
        command: "VERSION",
        container_id: "",
        netns: "",
        ifname: "",
        cni_args: "",
        cni_path,
    };
    let answer = exec_plugin(plugin, &call, &serde_json::json!({"cniVersion": "1.1.0"}))?;
    let versions = answer["supportedVersions"].as_array().ok_or_else(|| {
        CniError::new(
            codes::IPAM_FAILURE,
            format!("IPAM plugin {plugin}: VERSION answered no supportedVersions"),
            answer.to_string(),
        )
    })?;
    Ok(versions
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

fn exec_plugin(plugin: &str, call: &Call<'_>, network_config: &Value) -> Result<Value, CniError> {
    let binary = find_plugin(plugin, call.cni_path)?;
    tracing::debug!(plugin, command = call.command, "exec IPAM plugin");
    let started = std::time::Instant::now();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        CniError::new(
            codes::IPAM_FAILURE,
            format!("IPAM plugin {plugin}: {what}"),
            e.to_string(),
        )
    };
    let mut command = Command::new(&binary);
    command
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.cni_args)
        .env("CNI_PATH", call.cni_path.join(":"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A plugin binary just written (an install, an upgrade) is busy while a
    // process forked meanwhile still holds the writer's descriptor; that
    // lasts until its exec, so a few short retries see it through.
    let mut tries = 0;
    let mut child = loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 * tries));
            }
            other => break other.map_err(|e| failed("cannot start", &e))?,
        }
    };

    let stdin = network_config.to_string();
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The plugin may exit before reading everything; its answer says why.
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);

    let stdout_pipe = child.stdout.take().expect("stdout is piped");
    let stderr_pipe = child.stderr.take().expect("stderr is piped");
    let deadline = started + IPAM_TIMEOUT;
    // The exit is waited for under the same deadline: a plugin that closes
    // its pipes and keeps running is not waited on for ever.
    let finished = read_both(stdout_pipe, stderr_pipe, deadline).and_then(|output| {
        Ok(match output {
            Some(output) => exited_by(&child, deadline)?.then_some(output),
            None => None,
        })
    });
    let (stdout, stderr) = match finished {
        Ok(Some(output)) => output,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CniError::new(
                codes::TRY_AGAIN_LATER,
                format!("IPAM plugin {plugin}: no answer within {IPAM_TIMEOUT:?}, killed"),
                "",
            ));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed("cannot read its output", &e));
        }
    };
    let status = child.wait().map_err(|e| failed("wait failed", &e))?;
    tracing::debug!(
        plugin,
        command = call.command,
        micros = started.elapsed().as_micros() as u64,
        "IPAM plugin returned"
    );
    // The spec: a delegate's stderr is output to the caller's stderr.
    let stderr = String::from_utf8_lossy(&stderr);
    eprint!("{stderr}");
    if !stderr.trim().is_empty() {
        tracing::debug!(plugin, stderr = %stderr.trim(), "IPAM plugin stderr");
    }
    if !status.success() {
        return Err(delegate_error(plugin, call.command, &stdout, &stderr));
    }
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&stdout).map_err(|e| failed("printed a result that is not JSON", &e))
}

/// The most of a plugin's stdout and of its stderr that is kept: a
/// result is a few KiB, and a plugin writing without end must not take
/// the node's memory with it.
const MAX_OUTPUT: usize = 4 << 20;

/// Reads both pipes to their end at once, in this thread (a plugin that
/// fills one while the other is read would otherwise stall, and two
/// reader threads per exec cost more than the reads): `None` when the
/// deadline passes first.
fn read_both(
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    deadline: Instant,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open) = (true, true);
    let mut chunk = [0u8; 8192];
    while out_open || err_open {
        // Checked on every pass: a plugin that keeps trickling output is
        // stopped at the deadline too.
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if out_open {
                fds.push(PollFd::new(&stdout, PollFlags::IN));
            }
            if err_open {
                fds.push(PollFd::new(&stderr, PollFlags::IN));
            }
            if poll_by(&mut fds, deadline)? == 0 {
                return Ok(None);
            }
            // Readable or hung up: a read returns data or the end at once.
            let mut ready = fds.iter().map(|fd| !fd.revents().is_empty());
            (
                out_open && ready.next() == Some(true),
                err_open && ready.next() == Some(true),
            )
        };
        if out_ready {
            out_open = read_some(&mut stdout, &mut chunk, &mut out, "stdout")?;
        }
        if err_ready {
            err_open = read_some(&mut stderr, &mut chunk, &mut err, "stderr")?;
        }
    }
    Ok(Some((out, err)))
}

/// One read of a ready pipe into `into`; false at its end.
fn read_some(
    pipe: &mut impl Read,
    chunk: &mut [u8],
    into: &mut Vec<u8>,
    name: &str,
) -> std::io::Result<bool> {
    match pipe.read(chunk) {
        Ok(0) => Ok(false),
        Ok(n) if into.len() + n > MAX_OUTPUT => Err(std::io::Error::other(format!(
            "more than {} MiB on its {name}",
            MAX_OUTPUT >> 20
        ))),
        Ok(n) => {
            into.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether `child` has exited by `deadline` (it is reaped by the caller's
/// `wait`, which then returns at once).
fn exited_by(child: &std::process::Child, deadline: Instant) -> std::io::Result<bool> {
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let pidfd = pidfd_open(Pid::from_child(child), PidfdFlags::empty())?;
    Ok(poll_by(&mut [PollFd::new(&pidfd, PollFlags::IN)], deadline)? > 0)
}

/// poll(2) until `deadline`, an interrupted wait resumed: how many of
/// `fds` are ready, 0 when the deadline passed first.
fn poll_by(fds: &mut [PollFd<'_>], deadline: Instant) -> std::io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // At most IPAM_TIMEOUT: always a valid timespec.
        let timeout = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        match rustix::event::poll(fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(Into::into),
        }
    }
}

/// The delegate's error, keeping its code when it is one of the spec's.
fn delegate_error(plugin: &str, command: &str, stdout: &[u8], stderr: &str) -> CniError {
    let reported: Option<Value> = serde_json::from_slice(stdout).ok();
    let code = reported
        .as_ref()
        .and_then(|v| v["code"].as_u64())
        // The spec's codes (1-11, and STATUS's 50 and 51) keep their
        // meaning for our caller; a plugin's own (100+) are its business.
        .filter(|c| (1..=11).contains(c) || *c == 50 || *c == 51)
        .map(|c| c as u32)
        .unwrap_or(codes::IPAM_FAILURE);
    let msg = reported
        .as_ref()
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| stderr.trim().to_string());
    let details = reported
        .as_ref()
        .and_then(|v| v["details"].as_str().map(str::to_string))
        .unwrap_or_default();
    CniError::new(
        code,
        format!("IPAM plugin {plugin} failed {command}: {msg}"),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call<'a>(path: &'a [String]) -> Call<'a> {
        Call {
            command: "ADD",
            container_id: "c",
            netns: "/n",
            ifname: "net1",
            cni_args: "",
            cni_path: path,
        }
    }

    #[test]
    fn result_and_env_reach_the_plugin() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "fake",
            r#"cat >/dev/null; echo "{\"cmd\":\"$CNI_COMMAND\",\"if\":\"$CNI_IFNAME\"}""#,
        );
        let path = vec![dir.path().display().to_string()];
        let out = exec(&call(&path), &json!({"ipam": {"type": "fake"}})).unwrap();
        assert_eq!(out, json!({"cmd": "ADD", "if": "net1"}));
    }

    #[test]
    fn plugin_errors_keep_spec_codes() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "busy",
            r#"echo '{"code":11,"msg":"busy"}'; exit 1"#,
        );
        script(
            dir.path(),
            "full",
            r#"echo '{"code":999,"msg":"no addresses"}'; exit 1"#,
        );
        let path = vec![dir.path().display().to_string()];
        assert_eq!(
            exec(&call(&path), &json!({"ipam": {"type": "busy"}}))
                .unwrap_err()
                .code,
            11
        );
        let err = exec(&call(&path), &json!({"ipam": {"type": "full"}})).unwrap_err();
        assert_eq!(err.code, codes::IPAM_FAILURE);
        assert!(err.msg.contains("no addresses"));
        assert_eq!(
            exec(&call(&path), &json!({"ipam": {"type": "none"}}))
                .unwrap_err()
                .code,
            7
        );
    }

    /// `script` run by sh with its stdout and stderr piped to us.
    fn piped(script: &str) -> (std::process::Child, ChildStdout, ChildStderr) {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        (child, stdout, stderr)
    }

    /// A plugin that keeps its pipes open and says nothing is given up on
    /// at the deadline, not waited for.
    #[test]
    fn a_silent_plugin_is_given_up_on_at_the_deadline() {
        let (mut child, stdout, stderr) = piped("sleep 10");
        let started = Instant::now();
        let read = read_both(stdout, stderr, started + Duration::from_millis(200)).unwrap();
        assert!(read.is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Past the deadline the reader gives up at once, output waiting or
    /// not.
    #[test]
    fn output_still_coming_at_the_deadline_is_not_waited_for() {
        let (mut child, stdout, stderr) = piped("head -c 3000000 /dev/zero; sleep 10");
        let ready = poll_by(
            &mut [PollFd::new(&stdout, PollFlags::IN)],
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(ready, 1, "no output within 5 s");
        assert!(read_both(stdout, stderr, Instant::now()).unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A plugin that closes its pipes and keeps running is not waited on
    /// past the deadline; one that exits is seen at once.
    #[test]
    fn a_plugin_that_closes_its_pipes_and_stays_is_not_waited_for() {
        let (mut lingering, stdout, stderr) = piped("exec >&- 2>&-; sleep 10");
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        let read = read_both(stdout, stderr, deadline).unwrap();
        assert_eq!(read, Some((Vec::new(), Vec::new())));
        assert!(!exited_by(&lingering, deadline).unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        lingering.kill().unwrap();
        lingering.wait().unwrap();
        let mut quick = Command::new("true").spawn().unwrap();
        assert!(exited_by(&quick, Instant::now() + Duration::from_secs(5)).unwrap());
        quick.wait().unwrap();
    }

    /// Output past MAX_OUTPUT is refused, not kept.
    #[test]
    fn a_plugin_that_writes_without_end_is_cut_off() {
        let (mut child, stdout, stderr) = piped("head -c 5000000 /dev/zero");
        let err = read_both(stdout, stderr, Instant::now() + Duration::from_secs(10)).unwrap_err();
        assert!(
            err.to_string().contains("more than 4 MiB on its stdout"),
            "{err}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A plugin that writes a lot to stderr before its result does not
    /// stall (both pipes are read at once).
    #[test]
    fn a_chatty_plugin_does_not_stall() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "chatty",
            r#"cat >/dev/null; head -c 300000 /dev/zero | tr '\0' x >&2; echo '{"ok":true}'"#,
        );
        let path = vec![dir.path().display().to_string()];
        let started = std::time::Instant::now();
        let out = exec(&call(&path), &json!({"ipam": {"type": "chatty"}})).unwrap();
        assert_eq!(out, json!({"ok": true}));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
