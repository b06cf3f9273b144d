//! Where Talaria writes: the XDG data folder by default, `TALARIA_DATA_DIR` when set, and
//! nothing in the current directory or anywhere else in the home folder. The real binary runs
//! with HOME and every XDG variable pointed into a fresh folder, so any stray write shows.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::standin::{Reply, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

struct Home {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Home {
    fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        for dir in ["home", "cwd", "work"] {
            std::fs::create_dir(root.join(dir)).unwrap();
        }
        Home { _tmp: tmp, root }
    }

    /// `talaria ARGS` with only PATH, HOME and XDG_* set (into this folder), run in `cwd/`.
    fn talaria(&self, args: &[&str], data_dir: Option<&Path>) -> std::process::Output {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("XDG_DATA_HOME", self.root.join("xdg-data"))
            .env("XDG_CONFIG_HOME", self.root.join("xdg-config"))
            .env("XDG_CACHE_HOME", self.root.join("xdg-cache"))
            .env("XDG_STATE_HOME", self.root.join("xdg-state"))
            .env("TALARIA_API_KEY", "sk-test")
            .current_dir(self.root.join("cwd"))
            .args(args);
        if let Some(dir) = data_dir {
            cmd.env("TALARIA_DATA_DIR", dir);
        }
        cmd.output().unwrap()
    }

    fn exec(&self, server: &StandIn, data_dir: Option<&Path>) -> Vec<Value> {
        let work = self.root.join("work");
        let base = server.openai_base();
        let out = self.talaria(
            &[
                "exec",
                "--json",
                "--base-url",
                &base,
                "--model",
                "stand-in-model",
                "--workdir",
                work.to_str().unwrap(),
                "say hello",
            ],
            data_dir,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Fails unless every file written under this folder is inside `data` (relative to it).
    fn assert_only_under(&self, data: &str) {
        for file in self.files() {
            assert!(
                file.starts_with(data),
                "{file:?} was written outside the data folder {data}"
            );
        }
    }

    /// Every file under this folder, relative to it.
    fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out
    }
}

#[tokio::test]
async fn by_default_everything_goes_to_the_xdg_data_folder() {
    let server = StandIn::start().await;
    server.push(Reply::openai().text("Hello."));
    let home = Home::new();
    let lines = home.exec(&server, None);
    let data = home.root.join("xdg-data/app.talaria.desktop");
    let log = PathBuf::from(lines[0]["path"].as_str().unwrap());
    assert!(log.starts_with(data.join("sessions")), "{log:?}");

    // The other commands find it there too.
    let out = home.talaria(&["sessions", "list", "--json"], None);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], lines[0]["id"], "{listed}");

    home.assert_only_under("xdg-data/app.talaria.desktop");
}

#[tokio::test]
async fn talaria_data_dir_moves_everything() {
    let server = StandIn::start().await;
    server.push(Reply::openai().text("Hello."));
    let home = Home::new();
    let data = home.root.join("elsewhere/data");
    let lines = home.exec(&server, Some(&data));
    assert!(
        PathBuf::from(lines[0]["path"].as_str().unwrap()).starts_with(&data),
        "{lines:?}"
    );
    let out = home.talaria(&["sessions", "search", "hello", "--json"], Some(&data));
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["id"], lines[0]["id"], "{hits}");
    home.assert_only_under("elsewhere/data");
}
