//! End-to-end: the live dashboard at `/`, loaded in a real headless browser (Debian's
//! chromium, which `.ci/run` installs): the chain's values appear, a peer and a
//! transfer show up, and the values change between two loads.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use std::process::Command;

/// The browser: `CHROMIUM` if set, else `chromium` or `chromium-browser` on the PATH.
fn browser() -> String {
    if let Ok(b) = std::env::var("CHROMIUM") {
        return b;
    }
    for b in ["chromium", "chromium-browser"] {
        if Command::new(b).arg("--version").output().is_ok() {
            return b.to_string();
        }
    }
    panic!("no headless browser: install Debian's chromium (.ci/run does: apt-get install chromium) or set CHROMIUM");
}

/// The page's DOM after its script ran for a few (virtual) seconds.
fn dump(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=4000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in a dumped DOM.
fn text_of(dom: &str, id: &str) -> String {
    let open = format!("id=\"{id}\"");
    let Some(at) = dom.find(&open) else {
        return String::new();
    };
    let rest = &dom[at..];
    let start = rest.find('>').map_or(rest.len(), |i| i + 1);
    let end = rest[start..].find('<').map_or(rest.len(), |i| start + i);
    rest[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_values_in_a_real_browser() {
    let _serial = serial();
    let (a, b) = Net::start_pair(0xd1, 0xd2, 1, 300, ChainParams::default()).await;
    deposit(&b, a.chain, 10_000).await;
    let to = keyfile::address(&SecretKey::from_seed(b"dashboard"));
    let h = send_cross(&a, b.chain, to, 123).await;
    wait_stage(&a, &h, "settled_delivered", 60).await;

    let url = format!("{}/", a.url(0));
    let first = dump(&url);
    assert_eq!(text_of(&first, "chain"), "d1", "{first}");
    assert_eq!(text_of(&first, "verdict"), "producing", "{first}");
    let head1: u64 = text_of(&first, "head").parse().expect("a head height");
    assert!(text_of(&first, "lib").parse::<u64>().is_ok(), "{first}");
    assert!(
        first.contains("data-chain=\"d2\""),
        "the peer's row: {first}"
    );
    assert!(
        first.contains(">acknowledged<") && first.contains(">123<"),
        "the transfer's settlement: {first}"
    );
    assert!(first.contains(">sent<"), "{first}");

    a.wait_for("a few more blocks", 20, || async {
        a.head(0).await > head1 + 3
    })
    .await;
    let second = dump(&url);
    let head2: u64 = text_of(&second, "head").parse().expect("a head height");
    assert!(head2 > head1, "the head moved: {head1} → {head2}");
    assert_ne!(text_of(&first, "updated"), "", "an update time is shown");
}
