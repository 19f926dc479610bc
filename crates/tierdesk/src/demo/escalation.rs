//! Demo escalation templates (to tier 2 and tier 3) and tier 1 runbooks for
//! the seeded problems, attached to their tags.

use crate::now;
use serde_json::json;
use tierdesk_core::escalation::TemplateSpec;
use tierdesk_core::runbook::RunbookSpec;
use tierdesk_store::Store;

fn template(tier: u8, name: &str, impact: &[&str]) -> serde_json::Value {
    json!({ "name": name, "tier": tier,
        "description": "What the next tier needs so nobody asks the customer twice.",
        "fields": [
            { "key": "steps_tried", "label": "Steps tried", "type": "text", "required": true,
              "prefill": "steps_tried", "help": "Every step, in order, with its outcome" },
            { "key": "environment", "label": "Environment", "type": "text", "required": true,
              "help": "Device, OS and version, application and version, network" },
            { "key": "impact", "label": "Impact", "type": "choice", "required": true,
              "options": impact },
            { "key": "reproduction", "label": "Reproduction", "type": "text", "required": true,
              "help": "How to make it happen again", "prefill": "last_customer_message" },
            { "key": "checks", "label": "Checked", "type": "checklist", "required": false,
              "items": ["Known issues searched", "Customer's contact details confirmed"] },
            { "key": "logs", "label": "Logs or screenshots", "type": "attachment",
              "help": "File names or links" }
        ] })
}

fn runbooks() -> serde_json::Value {
    json!([
        { "name": "Password reset", "tags": ["password-reset"], "steps": [
            { "id": "verify", "title": "Verify the caller's identity",
              "instructions": "Ask for the employee number and call back on the number on file." },
            { "id": "locked", "title": "Is the account locked?",
              "check": { "yes": "unlock", "no": "reset" } },
            { "id": "unlock", "title": "Unlock the account in the directory" },
            { "id": "reset", "title": "Send a reset link to the verified address" },
            { "id": "signed-in", "title": "Can the user sign in now?",
              "check": { "yes": "resolved", "no": "escalate" } }
        ]},
        { "name": "VPN drops", "tags": ["vpn"], "steps": [
            { "id": "restart", "title": "Restart the VPN client" },
            { "id": "internet", "title": "Does the internet work without the VPN?",
              "check": { "yes": "version", "no": "home-network" } },
            { "id": "home-network", "title": "Restart the home router and try again",
              "next": "resolved" },
            { "id": "version", "title": "Is the client 5.2 or newer?",
              "check": { "yes": "logs", "no": "upgrade" } },
            { "id": "upgrade", "title": "Upgrade the client from the portal", "next": "resolved" },
            { "id": "logs", "title": "Collect the client log (Help → Export log)",
              "next": "escalate" }
        ]},
        { "name": "Outlook errors", "tags": ["o365"], "steps": [
            { "id": "webmail", "title": "Does Outlook on the web work?",
              "check": { "yes": "credentials", "no": "licence" } },
            { "id": "licence", "title": "Check the user's Microsoft 365 licence is assigned",
              "next": "escalate" },
            { "id": "credentials", "title": "Clear saved Office credentials in Credential Manager" },
            { "id": "profile", "title": "Create a new Outlook profile",
              "instructions": "Control Panel → Mail → Show Profiles → Add." },
            { "id": "fixed", "title": "Does Outlook work with the new profile?",
              "check": { "yes": "resolved", "no": "escalate" } }
        ]},
        { "name": "Slow computer", "tags": ["slow-computer"], "steps": [
            { "id": "restart", "title": "Restart the computer (a real restart, not shut down)" },
            { "id": "disk", "title": "Is there more than 10% free disk space?",
              "check": { "yes": "updates", "no": "cleanup" } },
            { "id": "cleanup", "title": "Run Disk Cleanup including system files" },
            { "id": "updates", "title": "Install pending Windows updates and restart" },
            { "id": "better", "title": "Is it fast again?",
              "check": { "yes": "resolved", "no": "escalate" } }
        ]}
    ])
}

/// Saves the demo templates and runbooks; how many of each.
pub async fn seed(store: &dyn Store) -> anyhow::Result<(usize, usize)> {
    let templates = [
        template(
            2,
            "Escalate to tier 2",
            &["one user", "several users", "a whole client"],
        ),
        template(
            3,
            "Escalate to tier 3 (engineering)",
            &["one client", "several clients", "every client"],
        ),
    ];
    for value in &templates {
        let spec: TemplateSpec = serde_json::from_value(value.clone())?;
        store.create_escalation_template(spec, now()).await?;
    }
    let specs: Vec<RunbookSpec> = serde_json::from_value(runbooks())?;
    let count = specs.len();
    for spec in specs {
        store.create_runbook(spec, now()).await?;
    }
    Ok((templates.len(), count))
}
