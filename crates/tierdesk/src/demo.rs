//! Deterministic demo data: Northstar IT, a managed service provider with
//! three client organisations on different plans, four teams, ten agents
//! across the tiers, and a few hundred tickets drawn from the seeds' own
//! examples — with replies, notes, escalations and every status.

mod escalation;
pub(crate) mod rules;
mod sla;

use crate::backend::DemoLogin;
use crate::now;
use anyhow::Context;
use futures::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use tierdesk_core::{
    Actor, AgentId, Channel, ContactId, Priority, Role, Status, TagName, TeamId, Tier, Timestamp,
};
use tierdesk_store::*;

pub const ADMIN_EMAIL: &str = "admin@northstar-it.example";
pub const DEMO_PASSWORD: &str = "tierdesk-demo";

/// A new, empty data directory for one demo run.
pub fn fresh_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tierdesk-demo-{}", now().millis()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

struct Template {
    subject: &'static str,
    body: &'static str,
    tags: &'static [&'static str],
    team: &'static str,
    tier: u8,
    priority: Priority,
    /// The tier it ends up at when it escalates.
    escalates_to: Option<u8>,
}

const fn t(
    subject: &'static str,
    body: &'static str,
    tags: &'static [&'static str],
    team: &'static str,
    tier: u8,
    priority: Priority,
    escalates_to: Option<u8>,
) -> Template {
    Template {
        subject,
        body,
        tags,
        team,
        tier,
        priority,
        escalates_to,
    }
}

const TEMPLATES: &[Template] = &[
    t(
        "Invoice charged twice this month",
        "We were billed twice for the October invoice. Can you refund the duplicate charge?",
        &["billing", "l1-billing"],
        "billing",
        1,
        Priority::P3,
        None,
    ),
    t(
        "Need a copy of last month's invoice",
        "Our accountant needs the PDF of last month's invoice for the audit.",
        &["billing", "l1-billing"],
        "billing",
        1,
        Priority::P4,
        None,
    ),
    t(
        "Update the credit card on file",
        "Our company card expires this month. How do we update payment details?",
        &["billing", "l1-billing"],
        "billing",
        1,
        Priority::P4,
        None,
    ),
    t(
        "License renewal price increased",
        "The renewal quote is 20% higher than last year. Can you explain the change?",
        &["billing"],
        "billing",
        1,
        Priority::P3,
        Some(2),
    ),
    t(
        "New hire starting Monday needs accounts",
        "We have a new receptionist starting Monday. Please create email, practice software and VPN accounts.",
        &["onboarding"],
        "onboarding",
        1,
        Priority::P3,
        None,
    ),
    t(
        "Set up a laptop for a new employee",
        "Please prepare a laptop with our standard image for a new paralegal.",
        &["onboarding"],
        "onboarding",
        1,
        Priority::P3,
        None,
    ),
    t(
        "Offboard a departing employee",
        "An employee leaves on Friday. Please disable their accounts and forward their mail to the office manager.",
        &["onboarding", "account-unlock"],
        "onboarding",
        1,
        Priority::P2,
        None,
    ),
    t(
        "Locked out of my account",
        "I typed my password wrong too many times and now I'm locked out.",
        &["password-reset", "account-unlock"],
        "technical",
        1,
        Priority::P2,
        None,
    ),
    t(
        "Password reset for the practice management app",
        "I forgot my password for the practice management system and the reset email never arrives.",
        &["password-reset"],
        "technical",
        1,
        Priority::P3,
        None,
    ),
    t(
        "VPN disconnects every hour",
        "Since Monday my VPN drops roughly every hour and I lose my remote desktop session.",
        &["vpn", "network"],
        "network",
        1,
        Priority::P3,
        Some(2),
    ),
    t(
        "Cannot connect to the VPN from home",
        "The VPN client says 'authentication failed' although my password works for email.",
        &["vpn"],
        "network",
        1,
        Priority::P2,
        None,
    ),
    t(
        "Outlook keeps asking for my password",
        "Outlook prompts for my Office 365 password every few minutes.",
        &["o365", "email"],
        "technical",
        1,
        Priority::P3,
        Some(2),
    ),
    t(
        "Shared mailbox not showing in Outlook",
        "The front-desk shared mailbox disappeared from Outlook for three of us.",
        &["o365", "email"],
        "technical",
        1,
        Priority::P3,
        None,
    ),
    t(
        "Teams calls keep dropping",
        "Microsoft Teams calls drop after a few minutes on the office Wi-Fi.",
        &["o365", "network"],
        "network",
        1,
        Priority::P3,
        Some(2),
    ),
    t(
        "Error 500 when exporting the monthly report",
        "Exporting the monthly report fails with 'Error 500 Internal Server Error'. Steps: Reports > Monthly > Export CSV.",
        &["bug-report", "technical"],
        "technical",
        2,
        Priority::P2,
        Some(3),
    ),
    t(
        "Scheduling app crashes when saving an appointment",
        "The scheduling module crashes every time we save a recurring appointment. Stack trace attached: NullReferenceException at Scheduler.Save()",
        &["bug-report", "technical"],
        "technical",
        2,
        Priority::P2,
        Some(3),
    ),
    t(
        "Backup job reports errors every night",
        "The nightly backup log shows 'error: snapshot failed' for the file server since the last update.",
        &["bug-report", "technical"],
        "technical",
        2,
        Priority::P2,
        Some(3),
    ),
    t(
        "File server down for everyone",
        "Nobody in the office can open the shared drive. It's down for everyone since 9:05.",
        &["l3-outage", "network"],
        "network",
        3,
        Priority::P1,
        None,
    ),
    t(
        "Internet outage at the main office",
        "The whole main office has no internet. Phones are down too.",
        &["l3-outage", "network"],
        "network",
        3,
        Priority::P1,
        None,
    ),
    t(
        "Email down for the whole company",
        "No one can send or receive email since this morning. Outage affects all users.",
        &["l3-outage", "email", "o365"],
        "technical",
        3,
        Priority::P1,
        None,
    ),
    t(
        "Printer offline on the second floor",
        "The second-floor printer shows offline for everyone on that floor.",
        &["technical", "printer"],
        "technical",
        1,
        Priority::P4,
        None,
    ),
    t(
        "Scan to email stopped working",
        "The copier no longer sends scans to email. It says 'SMTP error'.",
        &["technical", "printer", "email"],
        "technical",
        1,
        Priority::P3,
        Some(2),
    ),
    t(
        "Computer very slow after update",
        "My PC takes ten minutes to start since the last Windows update.",
        &["technical", "slow-computer"],
        "technical",
        1,
        Priority::P4,
        None,
    ),
    t(
        "Wi-Fi in the conference room is unreliable",
        "Guests can't stay connected to the conference room Wi-Fi.",
        &["network"],
        "network",
        1,
        Priority::P3,
        Some(2),
    ),
];

const ORGANISATIONS: &[(&str, &str, &str)] = &[
    ("Northwind Dental", "premium", "northwind-dental.example"),
    ("Blue Harbor Logistics", "business", "blueharbor.example"),
    (
        "Cedar & Pine Legal",
        "essentials",
        "cedarpine-legal.example",
    ),
];

const FIRST_NAMES: &[&str] = &[
    "Alex", "Bea", "Carlos", "Dana", "Eli", "Fatima", "Greg", "Hana", "Ivan", "Jules", "Kofi",
    "Lucia",
];
const LAST_NAMES: &[&str] = &[
    "Morgan", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Turner",
];

/// name, email local part, role, tier, teams
const AGENTS: &[(&str, &str, Role, u8, &[&str])] = &[
    (
        "Ada Admin",
        "admin",
        Role::Admin,
        3,
        &["billing", "onboarding", "technical", "network"],
    ),
    ("Tom Tran", "tom", Role::Agent, 1, &["billing"]),
    ("Lena Ortiz", "lena", Role::Agent, 1, &["onboarding"]),
    ("Sam Patel", "sam", Role::Agent, 1, &["technical"]),
    ("Mia Chen", "mia", Role::Agent, 1, &["network", "technical"]),
    ("Raj Iyer", "raj", Role::Agent, 2, &["technical"]),
    ("Ines Duarte", "ines", Role::Agent, 2, &["network"]),
    (
        "Owen Park",
        "owen",
        Role::Agent,
        2,
        &["billing", "technical"],
    ),
    ("Grace Kim", "grace", Role::Agent, 3, &["technical"]),
    ("Viktor Hale", "viktor", Role::Agent, 3, &["network"]),
];

const TAG_OWNERS: &[(&str, Option<u8>, Option<&str>, &str)] = &[
    (
        "l1-billing",
        Some(1),
        Some("billing"),
        "Billing questions tier 1 resolves: invoices, payment details, refunds",
    ),
    (
        "billing",
        None,
        Some("billing"),
        "Anything about invoices, plans and payments",
    ),
    (
        "onboarding",
        Some(1),
        Some("onboarding"),
        "New hires, leavers and equipment",
    ),
    (
        "technical",
        None,
        Some("technical"),
        "General technical problems",
    ),
    (
        "bug-report",
        Some(2),
        Some("technical"),
        "Reproducible software defects for tier 2 diagnosis",
    ),
    (
        "l3-outage",
        Some(3),
        Some("network"),
        "Outages affecting many users: tier 3 engineering, P1",
    ),
    (
        "password-reset",
        Some(1),
        Some("technical"),
        "Password resets, handled by tier 1 runbook",
    ),
    (
        "account-unlock",
        Some(1),
        Some("technical"),
        "Locked accounts",
    ),
    ("vpn", Some(1), Some("network"), "VPN connectivity"),
    (
        "o365",
        Some(1),
        Some("technical"),
        "Microsoft 365: Outlook, Teams, mailboxes",
    ),
    ("network", None, Some("network"), "LAN, Wi-Fi and internet"),
    ("printer", None, None, "Printers and scanners"),
    ("email", None, None, "Email delivery and clients"),
];

struct Directory {
    teams: Vec<(String, TeamId)>,
    agents: Vec<(AgentId, u8, Vec<String>)>,
    contacts: Vec<ContactId>,
}

impl Directory {
    fn team(&self, name: &str) -> Option<TeamId> {
        self.teams
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// A deterministic agent of `team` working at least `tier`.
    fn agent_for(&self, team: &str, tier: u8, pick: usize) -> Option<AgentId> {
        let fitting: Vec<_> = self
            .agents
            .iter()
            .filter(|(_, t, teams)| *t >= tier && teams.iter().any(|x| x == team))
            .collect();
        if fitting.is_empty() {
            None
        } else {
            Some(fitting[pick % fitting.len()].0)
        }
    }
}

fn tag(name: &str) -> anyhow::Result<TagName> {
    TagName::parse(name).map_err(|e| anyhow::anyhow!("demo tag {name}: {e}"))
}

fn tier(level: u8) -> Tier {
    Tier::new(i64::from(level)).unwrap_or(Tier::ONE)
}

/// Fills an empty store; on a store that already has agents it only reports the login.
/// The demo desk's mailbox, and the SMTP listener on a free local port
/// unless the configuration names one, so mail sent to it becomes tickets.
pub fn mail_intake(config: &mut crate::config::Config) -> anyhow::Result<()> {
    if config.smtp.listen.is_empty() {
        config.smtp.listen = "127.0.0.1:0".into();
    }
    if config.mailboxes.is_empty() {
        let mut spec: tierdesk_store::mail::MailboxSpec =
            serde_json::from_value(serde_json::json!({
                "name": "Northstar support",
                "address": DEMO_MAILBOX,
                "tier": 1,
                "acknowledge": true,
                "from_name": "Northstar IT Support",
            }))?;
        spec.validate()?;
        config.mailboxes.push(spec);
    }
    Ok(())
}

/// Where the demo desk takes mail.
pub const DEMO_MAILBOX: &str = "support@northstar-it.example";

pub async fn seed(store: &dyn Store, tickets: usize) -> anyhow::Result<DemoLogin> {
    let login = DemoLogin {
        email: ADMIN_EMAIL.into(),
        password: DEMO_PASSWORD.into(),
    };
    if !store.list_agents().await?.is_empty() {
        println!("The data directory already has data; not adding demo data.");
        return Ok(login);
    }
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(1042);
    let base = now();
    let day = 86_400_000_i64;
    let start = Timestamp(base.millis() - 30 * day);

    let mut teams = Vec::new();
    for (name, description) in [
        ("billing", "Invoices, plans, payments and refunds"),
        ("onboarding", "New hires, leavers, equipment"),
        ("technical", "Applications, devices and Microsoft 365"),
        ("network", "LAN, Wi-Fi, VPN, internet and servers"),
    ] {
        let team = store
            .create_team(NewTeam {
                name: name.into(),
                description: description.into(),
            })
            .await?;
        teams.push((name.to_string(), team.id));
    }
    let mut dir = Directory {
        teams,
        agents: Vec::new(),
        contacts: Vec::new(),
    };
    for (name, owner_tier, owner_team, description) in TAG_OWNERS {
        store
            .create_tag(NewTag {
                name: tag(name)?,
                description: (*description).into(),
                owner_tier: owner_tier.map(tier),
                owner_team: owner_team.and_then(|t| dir.team(t)),
            })
            .await?;
    }
    let rule_count = rules::seed(store, start).await?;
    let (template_count, runbook_count) = escalation::seed(store).await?;
    sla::seed(store, start).await?;
    // One argon2 hash for every demo agent: hashing is deliberately slow.
    let hash =
        tierdesk_server::auth::hash_password(DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, local, role, level, team_names) in AGENTS {
        let agent = store
            .create_agent(
                NewAgent {
                    email: format!("{local}@northstar-it.example"),
                    name: (*name).into(),
                    role: *role,
                    tier: tier(*level),
                    teams: team_names.iter().filter_map(|t| dir.team(t)).collect(),
                    capacity: if *role == Role::Admin { 5 } else { 25 },
                    available: *local != "viktor",
                    password_hash: Some(hash.clone()),
                },
                start,
            )
            .await?;
        dir.agents.push((
            agent.id,
            *level,
            team_names.iter().map(|s| s.to_string()).collect(),
        ));
    }
    for (i, (name, plan, domain)) in ORGANISATIONS.iter().enumerate() {
        let org = store
            .create_organisation(
                NewOrganisation {
                    name: (*name).into(),
                    plan: (*plan).into(),
                    domains: vec![(*domain).into()],
                },
                start,
            )
            .await?;
        for j in 0..8 {
            let first = FIRST_NAMES[(i * 5 + j) % FIRST_NAMES.len()];
            let last = LAST_NAMES[(i * 3 + j) % LAST_NAMES.len()];
            let contact = store
                .create_contact(
                    NewContact {
                        email: format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
                        name: format!("{first} {last}"),
                        organisation: Some(org.id),
                        phone: Some(format!("+1 555 01{i}{j:02}")),
                    },
                    start,
                )
                .await?;
            dir.contacts.push(contact.id);
        }
    }
    for (first, last) in [("Robin", "Fields"), ("Kim", "Lee")] {
        let contact = store
            .create_contact(
                NewContact {
                    email: format!(
                        "{}.{}@mail.example",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ),
                    name: format!("{first} {last}"),
                    organisation: None,
                    phone: None,
                },
                start,
            )
            .await?;
        dir.contacts.push(contact.id);
    }

    // Tickets are created in order (references follow creation time); their
    // later history is written concurrently so the group commit batches it.
    let mut plans = Vec::with_capacity(tickets);
    for i in 0..tickets {
        let template = &TEMPLATES[rng.gen_range(0..TEMPLATES.len())];
        let created = Timestamp(
            start.millis()
                + (i as i64) * (30 * day - day / 2) / (tickets.max(1) as i64)
                + rng.gen_range(0..3_600_000),
        );
        let channel = [
            Channel::Email,
            Channel::Email,
            Channel::Email,
            Channel::Web,
            Channel::Chat,
            Channel::Phone,
            Channel::Api,
        ][rng.gen_range(0..7)];
        let requester = dir.contacts[rng.gen_range(0..dir.contacts.len())];
        let change = store
            .create_ticket(
                TicketDraft {
                    subject: template.subject.into(),
                    body: template.body.into(),
                    requester: Requester::Id(requester),
                    channel,
                    priority: template.priority,
                    tier: tier(template.tier),
                    team: dir.team(template.team),
                    // Routing tags are the rules' job, as for a real customer's ticket.
                    tags: template
                        .tags
                        .iter()
                        .filter(|t| !rules::ROUTING_TAGS.contains(t))
                        .map(|t| tag(t))
                        .collect::<anyhow::Result<_>>()?,
                },
                Actor::Customer { id: requester },
                created,
            )
            .await?;
        // Older tickets are further along; recent ones are still new.
        let age = 1.0 - (i as f64 / tickets.max(1) as f64);
        let roll: f64 = rng.r#gen::<f64>() * 0.6 + age * 0.6;
        let target = match roll {
            r if r < 0.15 => Status::New,
            r if r < 0.45 => Status::Open,
            r if r < 0.58 => Status::Pending,
            r if r < 0.64 => Status::OnHold,
            r if r < 0.95 => Status::Solved,
            _ => Status::Closed,
        };
        let escalate = template.escalates_to.filter(|_| rng.gen_bool(0.5));
        plans.push((
            change.ticket,
            template,
            target,
            escalate,
            rng.gen_range(0..100usize),
            requester,
        ));
    }
    let mut done = 0usize;
    for chunk in plans.chunks(32) {
        let results = join_all(chunk.iter().map(
            |(ticket, template, target, escalate, pick, requester)| {
                play(
                    store, &dir, ticket, template, *target, *escalate, *pick, *requester,
                )
            },
        ))
        .await;
        for result in results {
            result?;
        }
        done += chunk.len();
        eprint!("\rDemo data: {done}/{tickets} tickets");
    }
    eprintln!(
        "\rDemo data: {tickets} tickets, {} agents, {} contacts, {rule_count} rules, \
         {template_count} escalation templates, {runbook_count} runbooks in {:.1}s",
        dir.agents.len(),
        dir.contacts.len(),
        started.elapsed().as_secs_f64()
    );
    let articles =
        tierdesk_kb::demo_articles().map_err(|e| anyhow::anyhow!("demo article: {e}"))?;
    let report = crate::kb_cli::import_sources(store, articles, None, false).await?;
    eprintln!(
        "Demo data: {} knowledge-base articles in {} categories",
        report.created, report.categories
    );
    Ok(login)
}

#[allow(clippy::too_many_arguments)]
async fn play(
    store: &dyn Store,
    dir: &Directory,
    ticket: &tierdesk_core::Ticket,
    template: &Template,
    target: Status,
    escalate: Option<u8>,
    pick: usize,
    requester: ContactId,
) -> anyhow::Result<()> {
    if target == Status::New {
        return Ok(());
    }
    let (id, created) = (ticket.id, ticket.created_at);
    // Rules may have routed the ticket above the template's tier.
    let level_now = template.tier.max(ticket.tier.level());
    let escalate = escalate.filter(|level| *level > level_now);
    let minute = 60_000;
    let mut at = created.plus_millis(20 * minute + (pick as i64 % 40) * minute);
    let customer = Actor::Customer { id: requester };
    let first_agent = dir
        .agent_for(template.team, level_now, pick)
        .or_else(|| dir.agents.first().map(|a| a.0));
    let Some(agent) = first_agent else {
        return Ok(());
    };
    let actor = Actor::Agent { id: agent };
    let mut apply = |change: TicketChange, by: Actor, step: i64| {
        at = at.plus_millis(step);
        let when = at;
        async move {
            store
                .change_ticket(id, None, change, by, when)
                .await
                .map(|_| ())
        }
    };
    apply(
        TicketChange::Update(UpdateSpec {
            assignee: Some(Some(agent)),
            ..UpdateSpec::default()
        }),
        actor,
        0,
    )
    .await?;
    apply(
        TicketChange::AgentReply {
            body:
                "Thanks for reaching out — I'm looking into this now and will update you shortly."
                    .into(),
            status: None,
        },
        actor,
        5 * minute,
    )
    .await?;
    if pick.is_multiple_of(3) {
        apply(
            TicketChange::CustomerMessage {
                author: requester,
                body: "Thanks! Any news? It's still happening.".into(),
            },
            customer,
            90 * minute,
        )
        .await?;
    }
    if let Some(level) = escalate {
        apply(
            TicketChange::InternalNote {
                body: format!("Runbook steps done, not resolved. Escalating to tier {level} with logs and reproduction steps."),
            },
            actor,
            30 * minute,
        )
        .await?;
        let senior = dir.agent_for(template.team, level, pick);
        apply(
            TicketChange::Update(UpdateSpec {
                tier: Some(tier(level)),
                assignee: Some(senior),
                ..UpdateSpec::default()
            }),
            actor,
            minute,
        )
        .await?;
    }
    let owner = match store.ticket(id).await? {
        Some(t) => t.assignee.map_or(actor, |id| Actor::Agent { id }),
        None => actor,
    };
    match target {
        Status::Pending => {
            apply(
                TicketChange::AgentReply {
                    body: "Could you restart the device and tell us whether the problem persists?"
                        .into(),
                    status: Some(Status::Pending),
                },
                owner,
                60 * minute,
            )
            .await?;
        }
        Status::OnHold => {
            apply(
                TicketChange::InternalNote {
                    body: "Waiting on the vendor's support case before we can continue.".into(),
                },
                owner,
                60 * minute,
            )
            .await?;
            apply(
                TicketChange::Update(UpdateSpec {
                    status: Some(Status::OnHold),
                    ..UpdateSpec::default()
                }),
                owner,
                minute,
            )
            .await?;
        }
        Status::Solved | Status::Closed => {
            apply(
                TicketChange::AgentReply {
                    body: "This is fixed now. Let us know if anything else comes up!".into(),
                    status: Some(Status::Solved),
                },
                owner,
                120 * minute,
            )
            .await?;
            if target == Status::Closed {
                apply(
                    TicketChange::Update(UpdateSpec {
                        status: Some(Status::Closed),
                        ..UpdateSpec::default()
                    }),
                    Actor::System,
                    4 * 1440 * minute,
                )
                .await?;
            }
        }
        _ => {}
    }
    Ok(())
}
