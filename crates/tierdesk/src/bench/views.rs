//! `tierdesk bench views`: the inbox's views on a large desk. A desk of N
//! tickets is written through the store (the same code path as the API, a
//! year of history: most tickets solved or closed, the rest spread over the
//! queues), then every default view and ten typical filtered views are timed
//! as the sidebar and the list use them: the first page in the view's order,
//! and the live count. With `--database postgres://…` the same desk is
//! copied into a fresh PostgreSQL database and timed there too.

use super::postgres::FreshDatabase;
use super::{ms, percentile};
use crate::now;
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tierdesk_core::query::Query;
use tierdesk_core::{
    Actor, AgentId, Channel, Priority, Role, Status, TagName, TeamId, Tier, Timestamp,
};
use tierdesk_store::view_count::driving_text;
use tierdesk_store::{
    NewAgent, NewOrganisation, NewTag, NewTeam, Requester, Store, TicketChange, TicketDraft,
    TicketQuery, TicketSort, UpdateSpec, VIEW_COUNT_CAP, ViewCount,
};
use tierdesk_store_postgres::{PostgresOptions, PostgresStore};
use tierdesk_store_sqlite::{Durability, SqliteStore};

pub(super) const DAY_MS: i64 = 86_400_000;
/// Filtered views agents keep besides the defaults.
const TYPICAL: &[(&str, &str)] = &[
    ("Open in tier 2", "status:open tier:2"),
    ("Urgent open", "status:new,open priority:P1,P2"),
    (
        "Unsolved bug reports",
        "tag:bug-report -status:solved,closed",
    ),
    ("Network queue", "team:4 status:open,pending"),
    ("My open and pending", "assignee:me status:open,pending"),
    ("Tier 1 unassigned", "assignee:none status:new,open tier:1"),
    ("Created in the last day", "created>-24h"),
    ("Pending over a week", "status:pending updated:>7d"),
    ("Client 2, not closed", "org:2 -status:closed"),
    (TEXT_VIEW, "vpn status:open"),
];

const SUBJECTS: &[(&str, &str)] = &[
    ("VPN drops every hour", "vpn"),
    ("Invoice charged twice", "l1-billing"),
    ("Error 500 when saving a report", "bug-report"),
    ("Password reset for the accounting share", "password-reset"),
    ("Outlook keeps asking for the password", "o365"),
    ("Printer on floor 2 jams", "printer"),
    ("New starter needs a laptop", "onboarding"),
    ("Website down for everyone", "l3-outage"),
    ("Account locked after holiday", "account-unlock"),
    ("Excel does not open attachments", "o365"),
];

/// The agent the views are timed for (tier 2, on the Technical team).
const ME: &str = "agent2@northstar.example";

/// Default views and the free-text view written by hand as one SQL query
/// each (page, count), for the baseline beside the store's figures; `?1`
/// is the agent's id, `?2` their tier, `{vpn}` the condition on an event
/// that its text holds a word starting with "vpn", in the backend's own
/// full-text index.
const HAND_WRITTEN: &[(&str, &str, &str)] = &[
    (
        "My open tickets",
        "SELECT * FROM tickets WHERE assignee_id = ?1 AND status NOT IN ('solved', 'closed') \
         ORDER BY priority, id LIMIT 50",
        "SELECT count(*) FROM tickets WHERE assignee_id = ?1 AND status NOT IN ('solved', 'closed')",
    ),
    (
        "Unassigned in my tier",
        "SELECT * FROM tickets WHERE tier = ?2 AND assignee_id IS NULL \
         AND status NOT IN ('solved', 'closed') ORDER BY id LIMIT 50",
        "SELECT count(*) FROM tickets WHERE tier = ?2 AND assignee_id IS NULL \
         AND status NOT IN ('solved', 'closed')",
    ),
    (
        "Tier 2: P1/P2 or bug-report",
        "SELECT * FROM tickets WHERE tier = 2 AND status NOT IN ('solved', 'closed') \
         AND (priority IN ('P1', 'P2') OR id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'bug-report')) \
         ORDER BY priority, id LIMIT 50",
        "SELECT count(*) FROM tickets WHERE tier = 2 AND status NOT IN ('solved', 'closed') \
         AND (priority IN ('P1', 'P2') OR id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'bug-report'))",
    ),
    (
        "Tier 3: outages",
        "SELECT * FROM tickets WHERE tier = 3 AND status NOT IN ('solved', 'closed') \
         AND id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'l3-outage') ORDER BY id LIMIT 50",
        "SELECT count(*) FROM tickets WHERE tier = 3 AND status NOT IN ('solved', 'closed') \
         AND id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'l3-outage')",
    ),
    (
        "Bug reports",
        "SELECT * FROM tickets WHERE status NOT IN ('solved', 'closed') \
         AND id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'bug-report') \
         ORDER BY priority, id LIMIT 50",
        "SELECT count(*) FROM tickets WHERE status NOT IN ('solved', 'closed') \
         AND id IN (SELECT ticket_id FROM ticket_tags WHERE tag = 'bug-report')",
    ),
    (
        TEXT_VIEW,
        "SELECT * FROM tickets WHERE status = 'open' \
         AND id IN (SELECT ticket_id FROM ticket_events WHERE {vpn}) ORDER BY id DESC LIMIT 50",
        "{capped vpn count}",
    ),
];

/// The typical view with free text.
const TEXT_VIEW: &str = "Open VPN tickets (text)";

/// [`TEXT_VIEW`]'s count written by hand, exactly.
const HAND_WRITTEN_EXACT_COUNT: &str = "SELECT count(*) FROM tickets WHERE status = 'open' \
     AND id IN (SELECT ticket_id FROM ticket_events WHERE {vpn})";

/// A hand-written query's p50 and p99.
type Floor = (Duration, Duration);

/// The parameters up to the highest one `sql` uses (`?1`: the agent,
/// `?2`: their tier): both backends refuse unused ones.
fn parameters(sql: &str, me: AgentId, tier: i64) -> Vec<i64> {
    let used = if sql.contains("?2") {
        2
    } else if sql.contains("?1") {
        1
    } else {
        0
    };
    [me.0, tier][..used].to_vec()
}

/// [`HAND_WRITTEN`] in SQLite's words. The free-text view's count stops
/// at the cap, as the store's does: the word's matches newest first, the
/// distinct open tickets among them.
fn for_sqlite(sql: &str) -> String {
    sql.replace(
        "{capped vpn count}",
        "SELECT count(*) FROM (SELECT DISTINCT e.ticket_id FROM search_ticket_text \
         JOIN ticket_events e ON e.id = search_ticket_text.rowid \
         WHERE search_ticket_text MATCH '\"vpn\"*' \
         AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = e.ticket_id AND t.status = 'open') \
         ORDER BY search_ticket_text.rowid DESC LIMIT 1001)",
    )
    .replace(
        "{vpn}",
        "id IN (SELECT rowid FROM search_ticket_text WHERE search_ticket_text MATCH '\"vpn\"*')",
    )
}

/// [`HAND_WRITTEN`] in PostgreSQL's words (migration 0019's stored vectors).
/// The free-text view's count stops at the cap: open tickets newest first,
/// each probed for a matching message (a scalar subquery, which the
/// planner cannot turn into a hash join over every match).
fn for_postgres(sql: &str) -> String {
    sql.replace(
        "{capped vpn count}",
        "SELECT count(*) FROM (SELECT 1 FROM tickets t WHERE status = 'open' \
         AND (SELECT true FROM ticket_events e WHERE e.ticket_id = t.id AND {vpn} LIMIT 1) \
         ORDER BY id DESC LIMIT 1001) c",
    )
    .replace("?1", "$1")
    .replace("?2", "$2")
    .replace("{vpn}", "search_vector @@ to_tsquery('english', 'vpn:*')")
}

/// Times [`HAND_WRITTEN`] on the SQLite file straight through rusqlite and
/// prints each next to the store's figure for the same view.
async fn print_hand_written(
    file: &std::path::Path,
    me: AgentId,
    tier: i64,
    repeat: usize,
    timings: &[Timing],
) -> anyhow::Result<()> {
    let raw = tierdesk_store_sqlite::raw_connection(&file.to_string_lossy()).await?;
    let raw = Arc::new(std::sync::Mutex::new(raw));
    println!(
        "the same views as one hand-written query each, straight on the SQLite file (rusqlite):"
    );
    print_floors(timings, |sql| {
        let raw = raw.clone();
        let sql = for_sqlite(&sql);
        let params = parameters(&sql, me, tier);
        async move {
            tokio::task::spawn_blocking(move || {
                let conn = raw.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                tierdesk_store_sqlite::read_all(&conn, &sql, &params)?;
                let mut times = Vec::with_capacity(repeat);
                for _ in 0..repeat {
                    let started = Instant::now();
                    tierdesk_store_sqlite::read_all(&conn, &sql, &params)?;
                    times.push(started.elapsed());
                }
                anyhow::Ok(floor(times))
            })
            .await?
        }
    })
    .await
}

/// Times [`HAND_WRITTEN`] on the PostgreSQL copy through one plain
/// connection (rows fetched, not decoded) and prints each next to the
/// store's figure for the same view.
async fn print_hand_written_postgres(
    url: &str,
    me: AgentId,
    tier: i64,
    repeat: usize,
    timings: &[Timing],
) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    println!("the same views as one hand-written query each, on one PostgreSQL connection:");
    let printed = print_floors(timings, |sql| {
        let pool = pool.clone();
        let params = parameters(&sql, me, tier);
        let sql = for_postgres(&sql);
        async move {
            let run = || {
                let mut query = sqlx::query(&sql);
                for p in &params {
                    query = query.bind(*p);
                }
                query.fetch_all(&pool)
            };
            run().await?;
            let mut times = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let started = Instant::now();
                run().await?;
                times.push(started.elapsed());
            }
            anyhow::Ok(floor(times))
        }
    })
    .await;
    pool.close().await;
    printed
}

fn floor(mut times: Vec<Duration>) -> Floor {
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// One row per [`HAND_WRITTEN`] view: the floor's page and count p50 / p99
/// as `time` measures them, and the store's p50 over each.
async fn print_floors<F, Fut>(timings: &[Timing], mut time: F) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Floor>>,
{
    println!(
        "{:<32} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "view", "page p50", "page p99", "store ×", "count p50", "count p99", "store ×"
    );
    for (name, page, count) in HAND_WRITTEN {
        let Some(ours) = timings.iter().find(|t| t.name == *name) else {
            continue;
        };
        let page_floor = time(page.to_string()).await?;
        let count_floor = time(count.to_string()).await?;
        let ratio = |ours: Duration, floor: Duration| ms(ours) / ms(floor).max(0.001);
        println!(
            "{:<32} {:>8.2}ms {:>8.2}ms {:>8.1} {:>8.2}ms {:>8.2}ms {:>8.1}",
            name,
            ms(page_floor.0),
            ms(page_floor.1),
            ratio(ours.page.0, page_floor.0),
            ms(count_floor.0),
            ms(count_floor.1),
            ratio(ours.counting.0, count_floor.0),
        );
    }
    for ours in timings.iter().filter(|t| t.name == TEXT_VIEW) {
        let Some(exact) = ours.exact else { continue };
        let floor = time(HAND_WRITTEN_EXACT_COUNT.to_string()).await?;
        println!(
            "{}, counted exactly: by hand p50 {:.2} ms, p99 {:.2} ms; the store {:.1}×",
            ours.name,
            ms(floor.0),
            ms(floor.1),
            ms(exact.0) / ms(floor.0).max(0.001)
        );
    }
    Ok(())
}

pub(super) struct Desk {
    pub me: AgentId,
    pub agents: Vec<AgentId>,
    pub teams: Vec<TeamId>,
}

pub(super) async fn furnish(store: &dyn Store, at: Timestamp) -> anyhow::Result<Desk> {
    let mut teams = Vec::new();
    for name in ["Billing", "Onboarding", "Technical", "Network"] {
        teams.push(
            store
                .create_team(NewTeam {
                    name: name.into(),
                    description: String::new(),
                })
                .await?
                .id,
        );
    }
    for (i, plan) in ["premium", "business", "essentials"].iter().enumerate() {
        store
            .create_organisation(
                NewOrganisation {
                    name: format!("Client {i}"),
                    plan: (*plan).into(),
                    domains: vec![format!("client{i}.example")],
                },
                at,
            )
            .await?;
    }
    for (name, tier) in [("bug-report", 2), ("l3-outage", 3), ("l1-billing", 1)] {
        store
            .create_tag(NewTag {
                name: TagName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
                description: String::new(),
                owner_tier: Some(Tier::new(tier).map_err(|e| anyhow::anyhow!("{e}"))?),
                owner_team: None,
            })
            .await?;
    }
    let mut agents = Vec::new();
    for i in 0..40_usize {
        let tier = [Tier::ONE, Tier::ONE, Tier::TWO, Tier::THREE][i % 4];
        agents.push(
            store
                .create_agent(
                    NewAgent {
                        email: format!("agent{i}@northstar.example"),
                        name: format!("Agent {i}"),
                        role: Role::Agent,
                        tier,
                        teams: vec![teams[i % teams.len()]],
                        capacity: 50,
                        available: true,
                        password_hash: None,
                    },
                    at,
                )
                .await?
                .id,
        );
    }
    Ok(Desk {
        me: agents[2],
        agents,
        teams,
    })
}

/// Writes ticket `i`: opened some time in the past year, then (for most)
/// assigned and moved along; the newest stay new or open.
async fn write_ticket(
    store: &dyn Store,
    desk: &Desk,
    i: usize,
    total: usize,
    end: Timestamp,
) -> anyhow::Result<()> {
    let (subject, tag) = SUBJECTS[i % SUBJECTS.len()];
    // Spread over a year, oldest first, so ids follow time as in a real desk.
    let age = (total - i) as i64 * (365 * DAY_MS) / total.max(1) as i64;
    let opened = Timestamp(end.0 - age);
    let draft = TicketDraft {
        subject: format!("{subject} ({i})"),
        body: format!(
            "Hello support,\n\n{subject} since this morning, for me and two colleagues. We restarted \
             and checked the cable already. Reference {i} in our log.\n\nThanks,\nPat"
        ),
        requester: Requester::Email {
            email: format!("customer{}@client{}.example", i % 5_000, i % 4),
            name: None,
        },
        channel: [Channel::Email, Channel::Chat, Channel::Web, Channel::Api][i % 4],
        priority: [
            Priority::P4,
            Priority::P3,
            Priority::P3,
            Priority::P2,
            Priority::P1,
        ][i % 5],
        tier: Tier::ONE,
        team: Some(desk.teams[i % desk.teams.len()]),
        tags: vec![TagName::parse(tag).map_err(|e| anyhow::anyhow!("{e}"))?],
    };
    let ticket = store
        .create_ticket(draft, Actor::System, opened)
        .await?
        .ticket;
    let recent = age < 14 * DAY_MS;
    let status = match (recent, i % 20) {
        (true, 0..=5) => None,
        (true, 6..=11) => Some(Status::Open),
        (true, 12..=14) => Some(Status::Pending),
        (true, _) => Some(Status::Solved),
        (false, 0) => Some(Status::Open),
        (false, 1) => Some(Status::Pending),
        (false, 2..=5) => Some(Status::Solved),
        (false, _) => Some(Status::Closed),
    };
    let Some(status) = status else {
        return Ok(());
    };
    let agent = desk.agents[i * 7 % desk.agents.len()];
    let assignee = (!i.is_multiple_of(9)).then_some(agent);
    let tier = [Tier::ONE, Tier::ONE, Tier::ONE, Tier::TWO, Tier::THREE][i % 5];
    let change = moved(status, tier, assignee);
    let at = Timestamp(opened.0 + 3_600_000 + (i % 48) as i64 * 3_600_000);
    match store
        .change_ticket(ticket.id, None, change, Actor::System, at)
        .await
    {
        Ok(_) => Ok(()),
        // An assignee below the ticket's new tier is refused: keep it unassigned.
        Err(_) => {
            store
                .change_ticket(
                    ticket.id,
                    None,
                    moved(status, tier, None),
                    Actor::System,
                    at,
                )
                .await?;
            Ok(())
        }
    }
}

/// The change that moves a new ticket to `status`; closing goes by solved.
fn moved(status: Status, tier: Tier, assignee: Option<AgentId>) -> TicketChange {
    let update = |status| {
        TicketChange::Update(UpdateSpec {
            status: Some(status),
            tier: Some(tier),
            assignee: assignee.map(Some),
            ..UpdateSpec::default()
        })
    };
    if status == Status::Closed {
        TicketChange::Several(vec![update(Status::Solved), update(Status::Closed)])
    } else {
        update(status)
    }
}

async fn fill(store: Arc<dyn Store>, tickets: usize) -> anyhow::Result<Desk> {
    let end = now();
    let desk = Arc::new(furnish(&*store, Timestamp(end.0 - 400 * DAY_MS)).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    // Many writers at once share each group commit.
    for _ in 0..64 {
        let (store, desk, next) = (store.clone(), desk.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tickets {
                    return anyhow::Ok(());
                }
                write_ticket(&*store, &desk, i, tickets, end).await?;
                let step = (tickets / 20).max(1);
                if i.is_multiple_of(step) && i > 0 {
                    eprintln!(
                        "  {:>3}% written ({i} tickets, {:.0}/s)",
                        i * 100 / tickets,
                        i as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.context("writer panicked")??;
    }
    eprintln!(
        "  wrote {tickets} tickets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Arc::try_unwrap(desk).map_err(|_| anyhow::anyhow!("desk still shared"))
}

struct Timing {
    name: String,
    /// The exact number of tickets the view selects.
    count: u64,
    /// The live count as the sidebar shows it ("1000+" past the cap).
    shown: ViewCount,
    page: (Duration, Duration),
    /// The live count as the sidebar asks for it (`count_view`).
    counting: (Duration, Duration),
    /// The exact count, for views whose live count stops at the cap.
    exact: Option<(Duration, Duration)>,
}

async fn time_view(
    store: &dyn Store,
    me: AgentId,
    name: &str,
    text: &str,
    sort: TicketSort,
    repeat: usize,
) -> anyhow::Result<Timing> {
    let query = Query::parse(text, now()).map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
    let mut pages = Vec::with_capacity(repeat);
    let mut counts = Vec::with_capacity(repeat);
    let mut exact = Vec::with_capacity(repeat);
    let capped = driving_text(&query).is_some();
    let mut count = 0;
    let mut shown = ViewCount::exact(0);
    for _ in 0..repeat {
        let started = Instant::now();
        store
            .query_tickets(&TicketQuery {
                query: query.clone(),
                me: Some(me),
                sort,
                after: None,
                limit: 50,
            })
            .await?;
        pages.push(started.elapsed());
        let started = Instant::now();
        shown = store.count_view(&query, Some(me), VIEW_COUNT_CAP).await?;
        counts.push(started.elapsed());
        // Only a capped count differs from the exact one: count that too.
        count = shown.count;
        if capped {
            let started = Instant::now();
            count = store.count_tickets(&query, Some(me)).await?;
            exact.push(started.elapsed());
        }
    }
    let spread = |mut times: Vec<Duration>| {
        times.sort();
        (percentile(&times, 0.5), percentile(&times, 0.99))
    };
    Ok(Timing {
        name: name.to_string(),
        count,
        shown,
        page: spread(pages),
        counting: spread(counts),
        exact: capped.then(|| spread(exact)),
    })
}

async fn time_all(store: &dyn Store, me: AgentId, repeat: usize) -> anyhow::Result<Vec<Timing>> {
    let mut views: Vec<(String, String, TicketSort)> = store
        .list_views(me)
        .await?
        .into_iter()
        .map(|v| (v.name, v.query, v.sort))
        .collect();
    views.extend(
        TYPICAL
            .iter()
            .map(|(n, q)| (n.to_string(), q.to_string(), TicketSort::Newest)),
    );
    let mut out = Vec::new();
    for (name, query, sort) in views {
        // One untimed run warms the cache, as a sidebar that is in use is.
        time_view(store, me, &name, &query, sort, 1).await?;
        out.push(time_view(store, me, &name, &query, sort, repeat).await?);
    }
    Ok(out)
}

fn print(backend: &str, tickets: usize, timings: &[Timing]) {
    println!(
        "\nViews on {backend}, {tickets} tickets (first page of 50 in the view's order; live count):"
    );
    println!(
        "{:<34} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10}",
        "view", "tickets", "shown", "page p50", "page p99", "count p50", "count p99"
    );
    for t in timings {
        println!(
            "{:<34} {:>9} {:>7} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            t.name,
            t.count,
            t.shown.to_string(),
            ms(t.page.0),
            ms(t.page.1),
            ms(t.counting.0),
            ms(t.counting.1)
        );
    }
    let worst_page = timings.iter().map(|t| t.page.1).max().unwrap_or_default();
    let worst_count = timings
        .iter()
        .map(|t| t.counting.1)
        .max()
        .unwrap_or_default();
    println!(
        "worst p99: page {:.2} ms, count {:.2} ms",
        ms(worst_page),
        ms(worst_count)
    );
    for t in timings {
        if let Some((p50, p99)) = t.exact {
            println!(
                "{}: shown as {}; counted exactly instead: p50 {:.2} ms, p99 {:.2} ms",
                t.name,
                t.shown,
                ms(p50),
                ms(p99)
            );
        }
    }
}

pub async fn run(
    tickets: usize,
    repeat: usize,
    database: Option<String>,
    keep: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let desk_dir = super::DeskDir::new(keep.as_deref())?;
    let dir = desk_dir.path.as_path();
    let sqlite = Arc::new(SqliteStore::open_dir(dir, Durability::Normal).await?);
    let me = if desk_dir.holds(&*sqlite, tickets).await? {
        sqlite
            .agent_by_email(ME)
            .await?
            .with_context(|| format!("{} holds no {ME}: not a views desk", dir.display()))?
            .id
    } else {
        eprintln!("writing {tickets} tickets through the store (SQLite)…");
        fill(sqlite.clone(), tickets).await?.me
    };
    let timings = time_all(&*sqlite, me, repeat).await?;
    print("SQLite", tickets, &timings);
    let tier = sqlite
        .agent_by_email(ME)
        .await?
        .map_or(2, |agent| i64::from(agent.tier.level()));
    print_hand_written(&dir.join("tierdesk.db"), me, tier, repeat, &timings).await?;
    if let Ok(store) = Arc::try_unwrap(sqlite) {
        store.close().await;
    }
    if let Some(server) = database {
        let fresh = FreshDatabase::create(&server, "views").await?;
        eprintln!("copying the desk into PostgreSQL…");
        let from = format!("sqlite://{}", dir.join("tierdesk.db").display());
        let copied = crate::migrate_data::run(&from, &fresh.url).await;
        let result = match copied {
            Ok(_) => {
                let pg = PostgresStore::connect(&fresh.url, PostgresOptions::default()).await?;
                sqlx_analyze(&fresh.url).await?;
                let timings = time_all(&pg, me, repeat).await;
                pg.close().await;
                match timings {
                    Ok(timings) => {
                        print("PostgreSQL", tickets, &timings);
                        print_hand_written_postgres(&fresh.url, me, tier, repeat, &timings).await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        fresh.drop_now().await?;
        result?;
    }
    Ok(())
}

/// The steady state autovacuum reaches soon after a bulk copy: fresh
/// statistics, and a visibility map, without which a count cannot be
/// answered from an index alone.
pub(super) async fn sqlx_analyze(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
