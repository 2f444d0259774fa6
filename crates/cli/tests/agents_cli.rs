//! `concierge agents create|list|set-password` as a process on a temp data directory: the
//! password comes from standard input and is checked, teams must exist, emails are unique
//! (case-insensitively). Signing in with the stored hash is tested over HTTP
//! (`crates/server/tests/api/console.rs`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn concierge(data: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .env("CONCIERGE__STORAGE__DATA_DIR", data)
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__PROVIDER", "none")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run concierge");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn console_accounts_are_created_listed_and_given_new_passwords_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb).expect("kb");
    std::fs::write(kb.join("a.md"), "# Returns\n\nReturn within 30 days.\n").expect("doc");
    let data = dir.path().join("data");
    let (ok, out) = concierge(
        &data,
        &["ingest", kb.to_str().unwrap(), "--workspace", "acme"],
        "",
    );
    assert!(ok, "{out}");
    let create = |email: &str, extra: &[&str], password: &str| {
        let mut args = vec![
            "agents",
            "create",
            "--workspace",
            "acme",
            "--email",
            email,
            "--name",
            "Ana Kovač",
            "--languages",
            "en,de",
        ];
        args.extend_from_slice(extra);
        concierge(&data, &args, password)
    };
    let (ok, out) = create(
        "ana@example.com",
        &["--role", "admin"],
        "a long passphrase\n",
    );
    assert!(ok && out.contains("created ana@example.com"), "{out}");
    // Refused: a short password, an unknown team, the same email again.
    let (ok, out) = create("ben@example.com", &[], "short\n");
    assert!(!ok && out.contains("at least 12 characters"), "{out}");
    let (ok, out) = create(
        "ben@example.com",
        &["--teams", "nowhere"],
        "a long passphrase\n",
    );
    assert!(!ok && out.contains("no team is named"), "{out}");
    let (ok, out) = create("ANA@example.com", &[], "a long passphrase\n");
    assert!(!ok && out.contains("exists"), "{out}");

    let (ok, out) = concierge(&data, &["agents", "list", "--workspace", "acme"], "");
    assert!(ok, "{out}");
    assert!(
        out.contains("ana@example.com  Ana Kovač  admin") && out.contains("last seen never"),
        "{out}"
    );
    let (ok, out) = concierge(
        &data,
        &[
            "agents",
            "set-password",
            "--workspace",
            "acme",
            "--email",
            "ana@example.com",
        ],
        "another long passphrase\n",
    );
    assert!(
        ok && out.contains("password of ana@example.com set"),
        "{out}"
    );
    let (ok, out) = concierge(
        &data,
        &[
            "agents",
            "set-password",
            "--workspace",
            "acme",
            "--email",
            "zed@example.com",
        ],
        "another long passphrase\n",
    );
    assert!(!ok && out.contains("no account"), "{out}");
}
