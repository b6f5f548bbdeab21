//! Test support for the end-to-end tests: start the real `oms` binary and talk to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod topology;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// A running `oms` process; killed on drop if still alive.
pub struct OmsProcess {
    child: Child,
    stdout_lines: mpsc::Receiver<String>,
    /// Everything printed so far (for assertion messages).
    pub seen: Vec<String>,
}

impl OmsProcess {
    /// Starts `oms` with `args`, logging as JSON to stderr.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(args)
            .env("OMS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the oms binary");
        let (sender, stdout_lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            stdout_lines,
            seen: Vec::new(),
        }
    }

    /// Waits until a line containing `text` is printed.
    pub fn wait_for_line(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(text);
                self.seen.push(line);
                if found {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                panic!(
                    "oms exited with {status} before printing {text:?}:\n{}",
                    self.seen.join("\n")
                );
            }
        }
        panic!(
            "oms did not print {text:?} within {timeout:?}:\n{}",
            self.seen.join("\n")
        );
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        self.wait(timeout)
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Panics with the output if the process has exited.
    pub fn assert_running(&mut self, name: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.drain();
            panic!("{name} exited with {status}:\n{}", self.output());
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.drain();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "oms still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn drain(&mut self) {
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(line) = self.stdout_lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// All output so far as one string.
    pub fn output(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for OmsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first of `count` consecutive free loopback ports.
pub fn free_port_range(count: u16) -> u16 {
    'search: for _ in 0..200 {
        let base = oms_platform::testing::free_port();
        if base.checked_add(count).is_none() {
            continue;
        }
        let mut held = Vec::new();
        for port in base..base + count {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => held.push(listener),
                Err(_) => continue 'search,
            }
        }
        return base;
    }
    panic!("no {count} consecutive free ports");
}
