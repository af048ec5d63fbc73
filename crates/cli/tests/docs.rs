//! The documentation's console sessions, run as written.
//!
//! Every ```` ```console ```` block of README.md and docs/*.md is a session:
//! `$ ` starts a command (a line ending in `\` continues on the next one,
//! as in a shell; a `> ` line continues it too), an optional `? CODE` line
//! (`? 1`, `? failed`) gives its exit status (default: success), and the
//! lines after it are its output, standard output and standard error
//! together. Output is compared with snapbox's elision markers: `[..]`
//! matches part of a line, `...` on a line of its own any number of lines.
//! A block without output lines expects none.
//!
//! Each page runs in a fresh folder holding a copy of the repository's
//! `examples/`, `rules/` and `policy/` (the page's commands start at the
//! repository root, as a reader's do), with `textwatch` (this build) first
//! on the PATH, its own HOME and no TEXTWATCH_DB. Blocks of one page share
//! that folder, in order: the working folder and exported variables carry
//! from one command to the next, as in one terminal. A command ending in
//! `&` runs in the background until the page is done; its block shows what
//! it printed once it had printed that many lines. `127.0.0.1:8080` in a
//! page is replaced by a free port (and TEXTWATCH_LISTEN names it).
//!
//! A page that drifts from what the tool does fails here with the
//! command, its line, the difference and the whole output.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A command of a page and what it should print.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    status: Expected,
    output: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Success,
    Failed,
    Code(i32),
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The console sessions of a Markdown page, in order.
fn steps(page: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut continuing = false;
    for (i, raw) in page.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim_end();
        if !in_block {
            // Fences of other kinds (sh, text, toml) open and close outside
            // any session; only their contents are skipped.
            if let Some(info) = t.trim_start().strip_prefix("```") {
                let mut words = info.split(|c: char| c == ',' || c.is_whitespace());
                in_block = words.next() == Some("console") && !info.contains("ignore");
            }
            continue;
        }
        if t.trim_start() == "```" {
            in_block = false;
            continuing = false;
            continue;
        }
        if continuing {
            let last = steps.last_mut().unwrap();
            last.command.push('\n');
            last.command.push_str(t);
            continuing = t.ends_with('\\');
            continue;
        }
        if let Some(cmd) = t.strip_prefix("$ ") {
            steps.push(Step { line, command: cmd.to_string(), status: Expected::Success, output: String::new() });
            continuing = cmd.ends_with('\\');
            continue;
        }
        let Some(last) = steps.last_mut() else { panic!("line {line}: output before any `$ ` command") };
        if let Some(more) = t.strip_prefix("> ") {
            last.command.push('\n');
            last.command.push_str(more);
            continue;
        }
        if let Some(code) = t.strip_prefix("? ") {
            last.status = match code.trim() {
                "success" => Expected::Success,
                "failed" => Expected::Failed,
                n => Expected::Code(n.parse().unwrap_or_else(|_| panic!("line {line}: bad status {n:?}"))),
            };
            continue;
        }
        last.output.push_str(raw);
        last.output.push('\n');
    }
    assert!(!in_block, "a console block is not closed");
    steps
}

/// One page's terminal: a folder, the state a shell would keep between
/// commands, and the background processes it started.
struct Session {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    port: u16,
    background: Vec<(Child, PathBuf)>,
}

impl Session {
    fn new() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("textwatch");
        for sub in ["examples", "rules", "policy"] {
            copy_dir(&repo().join(sub), &root.join(sub));
        }
        let state = dir.path().join("state");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(home.join(".config")).unwrap();
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_textwatch")).parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        // The shell state every command starts from: the page's root folder
        // and a clean environment.
        std::fs::write(state.join("cwd"), root.to_str().unwrap()).unwrap();
        let mut env = std::fs::File::create(state.join("env")).unwrap();
        for (k, v) in [
            ("PATH", path.as_str()),
            ("HOME", home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", home.join(".config").to_str().unwrap()),
            ("NO_COLOR", "1"),
        ] {
            writeln!(env, "export {k}={}", shell_quote(v)).unwrap();
        }
        writeln!(env, "unset TEXTWATCH_DB TEXTWATCH_LOG TEXTWATCH_CONFIG TOKEN").unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `textwatch serve` without --listen takes 127.0.0.1:8080 from here.
        writeln!(env, "export TEXTWATCH_LISTEN=127.0.0.1:{port}").unwrap();
        Session { _dir: dir, root, state, port, background: Vec::new() }
    }

    fn localize(&self, s: &str) -> String {
        s.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", self.port))
    }

    /// The shell script around `command`: restore the folder and the
    /// variables, run it, save them.
    fn script(&self, command: &str, save: bool) -> String {
        let st = self.state.display();
        let mut s = format!(". '{st}/env'\ncd \"$(cat '{st}/cwd')\"\n{command}\n");
        if save {
            s.push_str(&format!("__rc=$?\npwd > '{st}/cwd'\nexport -p > '{st}/env'\nexit $__rc\n"));
        }
        s
    }

    /// Runs one step; returns (exit code, output).
    fn run(&mut self, step: &Step, expected_lines: usize) -> (Option<i32>, String) {
        let command = self.localize(&step.command);
        let trimmed = command.trim_end();
        if let Some(bg) = trimmed.strip_suffix('&').filter(|c| !c.ends_with('&')) {
            let log = self.state.join(format!("bg-{}.log", self.background.len()));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new("bash")
                .arg("-c")
                .arg(self.script(&format!("exec {bg}"), false))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("bash runs");
            // Wait for what the page shows, or for the process to stop.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut text = String::new();
            while Instant::now() < deadline {
                text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.lines().count() >= expected_lines.max(1) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.background.push((child, log));
            return (Some(0), text);
        }
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 2>&1\n{}", self.script(&command, true)))
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (child, _) in &mut self.background {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn tool_present(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Runs the console sessions of `page` (relative to the repository root)
/// and fails with every difference found.
fn check_page(page: &str) {
    let text = std::fs::read_to_string(repo().join(page)).unwrap();
    let steps = steps(&text);
    assert!(!steps.is_empty(), "{page} has no console session");
    if steps.iter().any(|s| s.command.contains("curl ")) && !tool_present("curl") {
        assert!(
            std::env::var_os("TEXTWATCH_REQUIRE_ALL").is_none(),
            "{page}: curl is not installed and TEXTWATCH_REQUIRE_ALL is set"
        );
        eprintln!("SKIPPED: {page}: its sessions use curl, which is not installed");
        return;
    }
    let mut session = Session::new();
    let mut failures = Vec::new();
    for step in &steps {
        let expected = session.localize(&step.output);
        let (code, actual) = session.run(step, expected.lines().count());
        let mut actual = actual.replace(&session.root.display().to_string(), "[ROOT]");
        // Output without a final newline (curl's) is shown on lines all the same.
        if !actual.is_empty() && !actual.ends_with('\n') {
            actual.push('\n');
        }
        let status_ok = match step.status {
            Expected::Success => code == Some(0),
            Expected::Failed => code != Some(0),
            Expected::Code(n) => code == Some(n),
        };
        let compared = snapbox::Assert::new().try_eq(
            Some(&format!("{page}:{}", step.line)),
            snapbox::Data::text(actual.clone()),
            snapbox::Data::text(expected),
        );
        if !status_ok || compared.is_err() {
            let mut f = format!("{page}:{}: $ {}\n", step.line, step.command);
            if !status_ok {
                f.push_str(&format!("exit status {code:?}, expected {:?}\n", step.status));
            }
            if let Err(e) = compared {
                f.push_str(&format!("{e}\n"));
            }
            f.push_str(&format!("whole output:\n{actual}"));
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} commands differ from {page}:\n\n{}",
        failures.len(),
        steps.len(),
        failures.join("\n")
    );
}

#[test]
fn readme() {
    check_page("README.md");
}

#[test]
fn attribution_page() {
    check_page("docs/attribution.md");
}

#[test]
fn policy_page() {
    check_page("docs/policy.md");
}

#[test]
fn every_page_with_a_console_session_is_checked() {
    let checked = ["README.md", "docs/attribution.md", "docs/policy.md"];
    let mut pages = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    for p in pages {
        let text = std::fs::read_to_string(&p).unwrap();
        let rel = p.strip_prefix(repo()).unwrap().to_str().unwrap().to_string();
        if !steps(&text).is_empty() {
            assert!(checked.contains(&rel.as_str()), "{rel} has console sessions but no test runs them");
        }
    }
}

#[test]
fn sessions_are_read_as_a_terminal_shows_them() {
    let page = "intro\n```console\n$ a --x \\\n    --y\nout 1\n? 2\n$ b\n> more\n```\n```sh\n$ not run\n```\n";
    let s = steps(page);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].command, "a --x \\\n    --y");
    assert_eq!(s[0].output, "out 1\n");
    assert_eq!(s[0].status, Expected::Code(2));
    assert_eq!(s[1].command, "b\nmore");
    assert_eq!(s[1].line, 7);
}
