use crate::durability::tierdesk;

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tierdesk(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn default_config_is_a_valid_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text, _) = run(dir.path(), &["default-config"]);
    assert!(ok);
    let with_dir = text.replace(
        "data_dir = \"./tierdesk-data\"",
        &format!("data_dir = {:?}", dir.path().join("d")),
    );
    std::fs::write(dir.path().join("tierdesk.toml"), with_dir).unwrap();
    let (ok, out, err) = run(dir.path(), &["--config", "tierdesk.toml", "migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("sqlite database is up to date"), "{out}");
    assert!(dir.path().join("d/tierdesk.db").exists());
    // Migrating again is a no-op.
    let (ok, _, err) = run(dir.path(), &["--config", "tierdesk.toml", "migrate"]);
    assert!(ok, "{err}");
}

#[test]
fn bad_configuration_and_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "durability = \"sometimes\"\n").unwrap();
    let (ok, _, err) = run(dir.path(), &["--config", "bad.toml", "migrate"]);
    assert!(!ok);
    assert!(err.contains("durability"), "{err}");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "create-agent",
            "--email",
            "a@b.io",
            "--name",
            "A",
            "--password",
            "short",
            "--data-dir",
            data,
        ],
    );
    assert!(!ok);
    assert!(err.contains("at least 8"), "{err}");
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "create-agent",
            "--email",
            "a@b.io",
            "--name",
            "A",
            "--tier",
            "0",
            "--password",
            "long enough",
            "--data-dir",
            data,
        ],
    );
    assert!(!ok);
    assert!(err.contains("tier"), "{err}");
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "create-token",
            "--agent",
            "ghost@b.io",
            "--data-dir",
            data,
        ],
    );
    assert!(!ok);
    assert!(err.contains("no agent"), "{err}");
    let (ok, out, err) = run(
        dir.path(),
        &[
            "admin",
            "create-agent",
            "--email",
            "a@b.io",
            "--name",
            "A",
            "--password",
            "long enough",
            "--data-dir",
            data,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("a@b.io"));
    let (ok, _, err) = run(
        dir.path(),
        &[
            "admin",
            "create-agent",
            "--email",
            "A@b.io",
            "--name",
            "A",
            "--password",
            "long enough",
            "--data-dir",
            data,
        ],
    );
    assert!(!ok, "duplicate agent email must fail");
    assert!(err.contains("already exists"), "{err}");
}
