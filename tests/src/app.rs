//! `userspace-app` run as a container would run it: `up` inside a network
//! namespace, and the commands next to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{app_binary, Netns};

/// A running `userspace-app up`, stopped (SIGTERM, by pid) when dropped.
pub struct App {
    pub dir: PathBuf,
    child: Child,
}

impl App {
    /// Starts `up` for the container whose mapped dir is `dir`, inside
    /// `netns`, and waits until its interfaces are connected.
    pub fn start(netns: &Netns, dir: &Path) -> App {
        App::start_with(netns, dir, &[])
    }

    /// Like [`App::start`], with more options before `up` (e.g.
    /// `--annotations FILE`).
    pub fn start_with(netns: &Netns, dir: &Path, options: &[&str]) -> App {
        App::start_up(netns, dir, options, &[])
    }

    /// `up --tap`: the interfaces as kernel TAP devices in `netns`.
    pub fn start_tap(netns: &Netns, dir: &Path) -> App {
        App::start_up(netns, dir, &[], &["--tap"])
    }

    fn start_up(netns: &Netns, dir: &Path, options: &[&str], up_options: &[&str]) -> App {
        let app = App::spawn_with(netns, dir, options, up_options);
        let out = app.command(&["wait", "--timeout-secs", "15"]);
        assert!(
            out.0,
            "interfaces of {} did not connect: {}",
            dir.display(),
            out.1
        );
        app
    }

    /// Starts `up` and waits only until it answers on its control socket.
    pub fn spawn(netns: &Netns, dir: &Path) -> App {
        App::spawn_with(netns, dir, &[], &[])
    }

    fn spawn_with(netns: &Netns, dir: &Path, options: &[&str], up_options: &[&str]) -> App {
        let child = netns
            .memif_peer(app_binary())
            .arg("--dir")
            .arg(dir)
            .args(options)
            .arg("up")
            .args(up_options)
            .env(
                "USERSPACE_APP_LOG",
                std::env::var("USERSPACE_APP_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start userspace-app up");
        let app = App {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !app.command(&["show"]).0 {
            assert!(
                std::time::Instant::now() < deadline,
                "userspace-app up did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        app
    }

    /// Runs a command against this app; (success, stdout + stderr).
    pub fn command(&self, args: &[&str]) -> (bool, String) {
        let (code, text) = self.command_status(args);
        (code == Some(0), text)
    }

    /// [`App::command`] with the exit code.
    pub fn command_status(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(app_binary())
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run userspace-app");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// `show --json`, the first interface.
    pub fn interface(&self) -> Value {
        let (ok, text) = self.command(&["show", "--json"]);
        assert!(ok, "show: {text}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("show --json: {e}: {text}"));
        v["interfaces"][0].clone()
    }

    /// Pings `ip` `count` times; returns how many were answered.
    pub fn ping(&self, ip: &str, count: u16) -> u64 {
        let (_, text) = self.command(&["ping", ip, "--count", &count.to_string(), "-i", "0.05"]);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary: {text}"));
        line.split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable summary: {line}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // `ip netns exec` execs the app, so this pid is the app's.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
