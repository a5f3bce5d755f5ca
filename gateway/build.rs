//! Puts the git revision the daemon is built from into `DISTPOS_GIT_REVISION` (read by
//! `distpos_gateway::build_info`): `DISTPOS_GIT_REVISION` from the environment if
//! set (a packager building from a tarball), else `git rev-parse --short=12 HEAD`,
//! else `unknown`. A build never fails for want of git.

use std::{path::PathBuf, process::Command};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=DISTPOS_GIT_REVISION");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("DISTPOS_GIT_REVISION")
        .ok()
        .filter(|s| !s.is_empty());
    let revision = from_env
        .or_else(|| {
            git(&["rev-parse", "--short=12", "HEAD"])
                .filter(|r| r.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DISTPOS_GIT_REVISION={revision}");
    // Built again when HEAD moves: HEAD itself (a checkout) and the branch it names
    // (a commit), loose or packed. Only files that exist are named: cargo would run
    // this script on every build for a missing one.
    let mut watch: Vec<PathBuf> = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(PathBuf::from(dir).join("HEAD"));
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let common = PathBuf::from(common);
        watch.push(common.join(&branch));
        watch.push(common.join("packed-refs"));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
