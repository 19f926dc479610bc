//! The demo desk's SLAs: Northstar's office hours (Berlin, weekdays
//! 08:00–18:00, public holidays closed), a policy per client plan (premium
//! around the clock and tighter, business and essentials in office hours),
//! and a rule that acts on a breach.

use serde_json::{Value, json};
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::rules::RuleSpec;
use tierdesk_core::sla::SlaPolicySpec;
use tierdesk_store::Store;

fn office_hours() -> Value {
    let day = json!(["08:00-18:00"]);
    json!({
        "name": "Northstar office hours",
        "time_zone": "Europe/Berlin",
        "hours": { "mon": day, "tue": day, "wed": day, "thu": day, "fri": day },
        "holidays": [
            { "date": "2026-01-01", "name": "New Year's Day", "yearly": true },
            { "date": "2026-05-01", "name": "Labour Day", "yearly": true },
            { "date": "2026-10-03", "name": "German Unity Day", "yearly": true },
            { "date": "2026-12-24", "name": "Christmas Eve", "yearly": true, "open": ["08:00-12:00"] },
            { "date": "2026-12-25", "name": "Christmas Day", "yearly": true },
            { "date": "2026-12-26", "name": "Boxing Day", "yearly": true },
            { "date": "2026-04-03", "name": "Good Friday" },
            { "date": "2026-04-06", "name": "Easter Monday" }
        ]
    })
}

fn policies(calendar: i64) -> Vec<Value> {
    vec![
        json!({
            "name": "Premium: around the clock",
            "applies_to": { "plans": ["premium"] },
            "targets": { "first_response": "1h", "next_response": "2h", "resolution": "8h" },
            "tiers": { "3": { "resolution": "4h" } }
        }),
        json!({
            "name": "Business: office hours",
            "applies_to": { "plans": ["business"] },
            "calendar_id": calendar,
            "targets": { "first_response": "4h", "next_response": "8h", "resolution": "24h" },
            "tiers": { "2": { "resolution": "16h" }, "3": { "resolution": "8h" } }
        }),
        json!({
            "name": "Essentials and everyone else: office hours",
            "calendar_id": calendar,
            "targets": { "first_response": "8h", "resolution": "40h" }
        }),
    ]
}

fn breach_rule() -> Value {
    json!({
        "name": "SLA breached: tag, raise to P2 and tell the team",
        "when": [{ "event": "sla_breach" }],
        "conditions": { "any": [
            { "field": "priority", "op": "is", "value": "P3" },
            { "field": "priority", "op": "is", "value": "P4" }
        ] },
        "actions": [
            { "action": "add_tags", "tags": ["sla-breached"] },
            { "action": "set_priority", "priority": "P2" },
            { "action": "notify", "to": { "kind": "team" },
              "message": "An SLA target of this ticket was breached" }
        ]
    })
}

/// Saves the calendar, policies and breach rule; returns the policy count.
pub async fn seed(store: &dyn Store, now: tierdesk_core::Timestamp) -> anyhow::Result<usize> {
    let calendar: CalendarSpec = serde_json::from_value(office_hours())?;
    let calendar = store.create_calendar(calendar, now).await?;
    let specs = policies(calendar.id.0);
    for value in &specs {
        let spec: SlaPolicySpec = serde_json::from_value(value.clone())?;
        store.create_sla_policy(spec, now).await?;
    }
    let rule: RuleSpec = serde_json::from_value(breach_rule())?;
    store.create_rule(rule, None, now).await?;
    Ok(specs.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tierdesk_core::rules::RuleSpec;

    #[test]
    fn the_demo_sla_configuration_validates() {
        let calendar: CalendarSpec = serde_json::from_value(office_hours()).unwrap();
        assert!(calendar.compile().is_ok());
        for value in policies(1) {
            let spec: SlaPolicySpec = serde_json::from_value(value).unwrap();
            assert_eq!(spec.validate(), Ok(()));
        }
        let rule: RuleSpec = serde_json::from_value(breach_rule()).unwrap();
        assert_eq!(rule.validate(), Ok(()));
    }
}
