//! The shared inbox from the command line on a real data directory: rules
//! imported from JSON route tickets, a bad rule file adds nothing and says
//! where it is wrong, export round-trips, views and ranked search print the
//! tickets, macros import.

use crate::durability::tierdesk;
use serde_json::json;

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tierdesk(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_views_search_and_macros_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let at = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", data]);
        run(dir.path(), &all)
    };
    let (ok, _, err) = at(&[
        "admin",
        "create-agent",
        "--email",
        "ann@desk.test",
        "--name",
        "Ann",
        "--tier",
        "2",
        "--password",
        "long enough",
    ]);
    assert!(ok, "{err}");

    // A file with one bad rule adds none of them, and names the problem.
    let good = json!({
        "name": "VPN words",
        "when": [{"event": "ticket_created"}],
        "conditions": {"any": [{"field": "text", "op": "contains", "value": ["vpn"]}]},
        "actions": [{"action": "add_tags", "tags": ["vpn"]}, {"action": "set_priority", "priority": "P2"}]
    });
    let bad = json!({"name": "Broken", "when": [], "actions": []});
    std::fs::write(dir.path().join("bad.json"), json!([good, bad]).to_string()).unwrap();
    let (ok, _, err) = at(&["rules", "import", "bad.json"]);
    assert!(!ok);
    assert!(err.contains("item 1") && err.contains("Broken"), "{err}");
    let (ok, out, _) = at(&["rules", "list"]);
    assert!(ok);
    assert!(out.trim().is_empty(), "nothing was added: {out}");
    let (ok, _, err) = at(&["rules", "import", "missing.json"]);
    assert!(!ok && err.contains("cannot read"), "{err}");
    std::fs::write(
        dir.path().join("typo.json"),
        json!({"name": "x", "when": [{"event": "tikcet_created"}], "actions": []}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = at(&["rules", "import", "typo.json"]);
    assert!(
        !ok && err.contains("when[0]"),
        "the path of the mistake: {err}"
    );

    std::fs::write(dir.path().join("rules.json"), json!([good]).to_string()).unwrap();
    let (ok, out, err) = at(&["rules", "import", "rules.json"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("added rule") && out.contains("VPN words"),
        "{out}"
    );
    let (ok, exported, _) = at(&["rules", "export"]);
    assert!(ok);
    let exported: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported[0]["name"], "VPN words");
    assert_eq!(exported[0]["actions"], good["actions"]);

    // Tickets come in over the API; the rule routes them.
    let (ok, token, err) = at(&["admin", "create-token", "--agent", "ann@desk.test"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let (mut server, base) = crate::durability::start_server(dir.path());
    let client = reqwest::Client::new();
    for (subject, body) in [
        ("VPN drops every hour", "The vpn client disconnects"),
        ("Printer jams", "Tray 2 jams on every job"),
    ] {
        let response = client
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(&token)
            .json(&json!({"subject": subject, "body": body, "requester_email": "pat@client.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let (ok, out, err) = at(&["rules", "test", "--ticket", "1001"]);
    assert!(ok, "{err}");
    assert!(out.contains("VPN words") && out.contains("P2"), "{out}");

    let (ok, out, err) = at(&[
        "views",
        "create",
        "--name",
        "VPN",
        "--query",
        "tag:vpn status:new",
        "--as",
        "ann@desk.test",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("created view"), "{out}");
    let (ok, out, _) = at(&["views", "list", "--as", "ann@desk.test"]);
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.contains("VPN"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(" 1 ") && line.contains("personal"), "{line}");
    let (ok, out, err) = at(&[
        "views",
        "show",
        "--query",
        "-tag:vpn",
        "--as",
        "ann@desk.test",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Printer jams") && !out.contains("VPN drops"),
        "{out}"
    );
    let (ok, _, err) = at(&[
        "views",
        "show",
        "--query",
        "status:sleeping",
        "--as",
        "ann@desk.test",
    ]);
    assert!(!ok && err.contains("at character"), "{err}");

    let (ok, out, err) = at(&["search", "jams", "--as", "ann@desk.test"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Printer jams") && out.contains("[jams]"),
        "{out}"
    );
    let (ok, _, err) = at(&["search", "status:open", "--as", "ann@desk.test"]);
    assert!(!ok && err.contains("needs words"), "{err}");

    std::fs::write(
        dir.path().join("macros.json"),
        json!([{"name": "Ask for logs", "actions": {"reply": "Hi {{requester.first_name}}, please send the logs.", "status": "pending"}}]).to_string(),
    )
    .unwrap();
    let (ok, out, err) = at(&["macros", "import", "macros.json"]);
    assert!(ok, "{err}");
    assert!(out.contains("Ask for logs"), "{out}");
    let (ok, out, _) = at(&["macros", "list", "--as", "ann@desk.test"]);
    assert!(
        ok && out.contains("shared") && out.contains("Ask for logs"),
        "{out}"
    );
}
