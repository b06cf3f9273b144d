//! The terminal's sandbox: a Landlock ruleset (Linux 5.13+) applied to the command's process
//! just before it starts. Writes are allowed in the working folder, the temp folders and the
//! extra folders from settings; reads everywhere except the secret folders (SSH keys, cloud
//! credentials, Talaria's own data). The ruleset is built in this process and only enforced
//! in the child (two system calls, safe between fork and exec).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr,
};

/// What the sandbox lets a command do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// Read, write and run: the working folder.
    pub workdir: PathBuf,
    /// Write (reads come from the read rules): extra folders from settings. A secret inside one
    /// stays out of reach (the folder is split around it).
    pub writable: Vec<PathBuf>,
    /// Read and write, whole: the temp folders. Never split, since commands must be able to
    /// create (and read back) files directly in them; so a secret placed in a temp folder is
    /// not protected (`Safety::notices` says so when it is the data folder).
    pub temp: Vec<PathBuf>,
    /// Neither read nor written: secret folders and files.
    pub hidden: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("Landlock is not available on this system ({0})")]
    Unavailable(String),
    #[error("the sandbox could not be set up: {0}")]
    Setup(String),
}

/// The Landlock ABI version the kernel offers, or why there is none. Probed once.
pub fn landlock_abi() -> Result<i32, String> {
    static ABI_VERSION: OnceLock<Result<i32, String>> = OnceLock::new();
    ABI_VERSION
        .get_or_init(|| {
            const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
            // SAFETY: with a null attribute and size 0 the call only reports the ABI version.
            let version = unsafe {
                libc::syscall(
                    libc::SYS_landlock_create_ruleset,
                    std::ptr::null::<libc::c_void>(),
                    0usize,
                    LANDLOCK_CREATE_RULESET_VERSION,
                )
            };
            if version >= 1 {
                i32::try_from(version).map_err(|_| "an unknown version".to_string())
            } else {
                let error = io::Error::last_os_error();
                Err(match error.raw_os_error() {
                    Some(libc::ENOSYS) => {
                        "the kernel is older than 5.13 or built without Landlock".to_string()
                    }
                    Some(libc::EOPNOTSUPP) => {
                        "Landlock is built into the kernel but turned off (boot with lsm=…,landlock)"
                            .to_string()
                    }
                    _ => error.to_string(),
                })
            }
        })
        .clone()
}

/// A ruleset ready to be enforced in a child process.
#[derive(Debug)]
pub struct Prepared {
    fd: OwnedFd,
}

impl Prepared {
    /// Builds the ruleset for `policy`.
    pub fn new(policy: &SandboxPolicy) -> Result<Prepared, SandboxError> {
        landlock_abi().map_err(SandboxError::Unavailable)?;
        let abi = ABI::V5;
        let all = AccessFs::from_all(abi);
        let read = AccessFs::from_read(abi);
        let write = all & !read;
        let setup = |e: landlock::RulesetError| SandboxError::Setup(e.to_string());
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(all)
            .map_err(setup)?
            .create()
            .map_err(setup)?;
        let hidden: Vec<PathBuf> = policy
            .hidden
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();

        let mut rules: Vec<(PathBuf, landlock::BitFlags<AccessFs>)> = Vec::new();
        let mut readable = Vec::new();
        expand(Path::new("/"), &hidden, &mut readable);
        rules.extend(readable.into_iter().map(|p| (p, read)));
        for dir in &policy.writable {
            let Ok(dir) = std::fs::canonicalize(dir) else {
                continue;
            };
            // A secret inside an extra folder stays out of reach: the folder is split around it.
            let mut parts = Vec::new();
            expand(&dir, &hidden, &mut parts);
            rules.extend(parts.into_iter().map(|p| (p, write)));
        }
        for dir in &policy.temp {
            if let Ok(dir) = std::fs::canonicalize(dir) {
                rules.push((dir, all));
            }
        }
        if let Ok(workdir) = std::fs::canonicalize(&policy.workdir) {
            rules.push((workdir, all));
        }
        for device in DEVICES {
            rules.push((PathBuf::from(device), all));
        }
        for (path, access) in rules {
            // A path that vanished since it was listed is simply left out.
            let Ok(fd) = PathFd::new(&path) else {
                continue;
            };
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, access))
                .map_err(setup)?;
        }
        let fd: Option<OwnedFd> = ruleset.into();
        let fd = fd.ok_or_else(|| {
            SandboxError::Unavailable("the kernel refused to create a ruleset".to_string())
        })?;
        Ok(Prepared { fd })
    }

    /// Enforces the ruleset in `command`'s process, between fork and exec.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and makes only two system
        // calls (no allocation, no locks), which is what a pre_exec hook may do. `fd` stays
        // open in the parent until spawn returns (we hold it), so the child has it too.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Devices ordinary commands write to.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// `dir` as one rule, or split into its entries when a hidden path lies inside it (Landlock
/// only adds rights, so a folder granted whole cannot keep a secret out). Symlinked entries get
/// no rule of their own: a rule on a link would grant its target.
fn expand(dir: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>) {
    if hidden.iter().any(|h| h == dir) {
        return;
    }
    if !hidden.iter().any(|h| h.starts_with(dir)) {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            continue;
        }
        expand(&entry.path(), hidden, out);
    }
}

/// The output of a failed sandboxed command says the sandbox stopped it.
pub fn looks_denied(output: &str) -> bool {
    const SIGNS: &[&str] = &[
        "Permission denied",
        "Operation not permitted",
        "permission denied",
        "EACCES",
        "EPERM",
    ];
    SIGNS.iter().any(|sign| output.contains(sign))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn expansion_leaves_out_hidden_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for sub in ["a", "b", "b/secret", "b/other"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(root.join("b/secret"), root.join("link")).unwrap();
        let mut out = Vec::new();
        expand(&root, &[root.join("b/secret")], &mut out);
        out.sort();
        assert_eq!(out, vec![root.join("a"), root.join("b/other")]);
    }
}
