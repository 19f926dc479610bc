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

#[test]
fn escalation_templates_and_runbooks_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let template = dir.path().join("template.json");
    std::fs::write(
        &template,
        r#"{ "name": "To tier 2", "tier": 2, "fields": [
            { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true } ] }"#,
    )
    .unwrap();
    let template = template.to_str().unwrap();
    for _ in 0..2 {
        // Setting again replaces the tier's template rather than adding one.
        let (ok, out, err) = run(
            dir.path(),
            &[
                "escalation",
                "templates",
                "set",
                template,
                "--data-dir",
                data,
            ],
        );
        assert!(ok, "{err}");
        assert!(out.contains("for tier 2"), "{out}");
    }
    let (ok, out, err) = run(
        dir.path(),
        &["escalation", "templates", "list", "--data-dir", data],
    );
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{out}");
    let runbooks = dir.path().join("runbooks.json");
    std::fs::write(
        &runbooks,
        r#"[{ "name": "VPN", "tags": ["vpn"], "steps": [
               { "id": "restart", "title": "Restart the client" } ] },
            { "name": "Broken", "tags": ["x"], "steps": [
               { "id": "a", "title": "A", "next": "nowhere" } ] }]"#,
    )
    .unwrap();
    let (ok, out, err) = run(
        dir.path(),
        &[
            "runbooks",
            "set",
            runbooks.to_str().unwrap(),
            "--data-dir",
            data,
        ],
    );
    assert!(!ok, "the broken runbook is refused");
    assert!(
        out.contains("saved runbook 1 \"VPN\" for tags vpn"),
        "{out}"
    );
    assert!(err.contains("steps[0].next"), "{err}");
    let (ok, out, err) = run(dir.path(), &["runbooks", "list", "--data-dir", data]);
    assert!(ok, "{err}");
    assert!(out.contains("\"Restart the client\""), "{out}");
    assert!(!out.contains("Broken"), "{out}");
}

#[test]
fn mailboxes_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let file = dir.path().join("mailbox.json");
    std::fs::write(
        &file,
        r#"{"name": "Support", "address": "Support@Desk.example", "acknowledge": true,
            "smtp": {"host": "127.0.0.1", "port": 2525, "username": "u", "password": "secret-pw"}}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (ok, out, err) = run(dir.path(), &["mailboxes", "add", file, "--data-dir", data]);
    assert!(ok, "{err}");
    assert!(out.contains("mailbox 1 support@desk.example"), "{out}");
    assert!(out.contains("inbound secret (shown once): "), "{out}");
    let (ok, out, err) = run(dir.path(), &["mailboxes", "list", "--data-dir", data]);
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["address"], "support@desk.example");
    assert_eq!(listed[0]["acknowledge"], true);
    assert_eq!(listed[0]["smtp"]["password_set"], true);
    assert!(!out.contains("secret-pw"), "{out}");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"name": "x", "address": "nope", "smtp": {"port": 0}}"#,
    )
    .unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &[
            "mailboxes",
            "set",
            "1",
            bad.to_str().unwrap(),
            "--data-dir",
            data,
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("address") && err.contains("smtp.port"),
        "{err}"
    );

    let (ok, out, err) = run(
        dir.path(),
        &["mailboxes", "remove", "1", "--data-dir", data],
    );
    assert!(ok, "{err}");
    assert!(out.contains("mailbox 1 removed"), "{out}");
    let (ok, out, _) = run(dir.path(), &["mailboxes", "list", "--data-dir", data]);
    assert!(ok);
    assert_eq!(out.trim(), "[]");
}
