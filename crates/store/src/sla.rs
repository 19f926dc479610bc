//! SLAs inside the ticket transaction, written once for every backend on
//! top of [`Tx`]: the compiled configuration cached per store, folding each
//! change's events into the ticket's stored SLA state, re-arming its timers
//! as durable jobs, and firing a timer exactly once.
//!
//! Like the rules, every calendar or policy change sets a generation stamp
//! in its own transaction; a ticket write reads the stamp (one row) and
//! recompiles only when it changed, so every instance sharing a database
//! picks up another's edit on its next write.

use crate::error::{Result, StoreError};
use crate::model::Change;
use crate::ops::{self, Tx};
use crate::rules::RuleCache;
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tierdesk_core::calendar::CalendarSpec;
use tierdesk_core::ids::{CalendarId, SlaPolicyId};
use tierdesk_core::job::{JobKind, NewJob};
use tierdesk_core::sla::{SlaConfig, SlaPolicy, SlaPolicySpec, SlaState};
use tierdesk_core::validate::ConfigError;
use tierdesk_core::{Event, OrganisationId, Ticket, TicketId, Timestamp};

/// The job that fires one SLA timer: payload `{ticket_id, key}`.
pub const TIMER_JOB: &str = "sla.timer";
/// The job that recomputes open tickets' deadlines after a configuration or
/// plan change: payload `{organisation_id}` (null: every open ticket).
pub const RECOMPUTE_JOB: &str = "sla.recompute";

/// A saved business-hours calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarRecord {
    pub id: CalendarId,
    #[serde(flatten)]
    pub spec: CalendarSpec,
    pub updated_at: Timestamp,
}

/// SLA reads and writes inside a backend's open write transaction.
#[async_trait]
pub trait SlaTx: Send {
    /// Changes whenever a calendar or policy does; 0 before the first change.
    async fn sla_generation(&mut self) -> Result<i64>;
    /// Every policy (any order) and every calendar.
    async fn sla_definitions(&mut self) -> Result<(Vec<SlaPolicy>, Vec<CalendarRecord>)>;
    async fn ticket_sla(&mut self, id: TicketId) -> Result<Option<SlaState>>;
    /// Stores the state and its view facts (`sla:` terms) for the ticket.
    async fn put_ticket_sla(
        &mut self,
        id: TicketId,
        state: &SlaState,
        now: Timestamp,
    ) -> Result<()>;
    /// The ticket's whole timeline, oldest first, for a ticket that has no
    /// SLA state yet (opened before the first policy).
    async fn ticket_timeline(&mut self, id: TicketId) -> Result<Vec<Event>>;
    /// As [`crate::JobStore::cancel_jobs`], inside this transaction.
    async fn cancel_jobs_in_tx(&mut self, dedupe_key: &str, now: Timestamp) -> Result<u64>;
}

/// Storage of calendars, policies and the per-ticket SLA projection.
#[async_trait]
pub trait SlaStore: Send + Sync + 'static {
    async fn list_calendars(&self) -> Result<Vec<CalendarRecord>>;
    async fn calendar(&self, id: CalendarId) -> Result<Option<CalendarRecord>>;
    /// Validates (every problem with its path) and saves.
    async fn create_calendar(&self, spec: CalendarSpec, now: Timestamp) -> Result<CalendarRecord>;
    async fn update_calendar(
        &self,
        id: CalendarId,
        spec: CalendarSpec,
        now: Timestamp,
    ) -> Result<CalendarRecord>;
    /// Refused with `InUse` while a policy counts in it.
    async fn delete_calendar(&self, id: CalendarId, now: Timestamp) -> Result<()>;

    /// Every policy, in evaluation order.
    async fn list_sla_policies(&self) -> Result<Vec<SlaPolicy>>;
    async fn sla_policy(&self, id: SlaPolicyId) -> Result<Option<SlaPolicy>>;
    /// Validates and saves a policy after the last one.
    async fn create_sla_policy(&self, spec: SlaPolicySpec, now: Timestamp) -> Result<SlaPolicy>;
    async fn update_sla_policy(
        &self,
        id: SlaPolicyId,
        spec: SlaPolicySpec,
        now: Timestamp,
    ) -> Result<SlaPolicy>;
    async fn delete_sla_policy(&self, id: SlaPolicyId, now: Timestamp) -> Result<()>;
    /// `order` must name every policy exactly once.
    async fn reorder_sla_policies(
        &self,
        order: &[SlaPolicyId],
        now: Timestamp,
    ) -> Result<Vec<SlaPolicy>>;

    /// The compiled configuration in force (cached while the generation holds).
    async fn sla_config(&self) -> Result<Arc<CachedSla>>;
    /// The stored SLA state of each of these tickets that has one.
    async fn ticket_slas(&self, ids: &[TicketId]) -> Result<BTreeMap<TicketId, SlaState>>;
    /// Runs the timer `key` of a ticket: when it is still due at `now`,
    /// appends its `sla_warning` / `sla_breached` event through the normal
    /// change path (rules run on it). `None` when stale or already fired.
    async fn fire_sla_timer(
        &self,
        ticket: TicketId,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Change>>;
    /// Re-selects the ticket's policy and recomputes its deadlines and
    /// timers at `now` (after a plan or configuration change).
    async fn recompute_ticket_sla(&self, ticket: TicketId, now: Timestamp) -> Result<()>;
    /// Tickets not closed (of `organisation`, when given), by id after `after`.
    async fn open_ticket_ids(
        &self,
        organisation: Option<OrganisationId>,
        after: TicketId,
        limit: u32,
    ) -> Result<Vec<TicketId>>;
}

/// The configuration compiled at one generation.
#[derive(Debug)]
pub struct CachedSla {
    pub generation: i64,
    pub config: SlaConfig,
}

/// One per store: the compiled SLA configuration, reused while the
/// generation holds.
#[derive(Debug, Default)]
pub struct SlaCache {
    current: Mutex<Option<Arc<CachedSla>>>,
}

impl SlaCache {
    pub async fn current(&self, tx: &mut dyn Tx) -> Result<Arc<CachedSla>> {
        let generation = tx.sla_generation().await?;
        if let Some(cached) = self.lock().clone()
            && cached.generation == generation
        {
            return Ok(cached);
        }
        let (policies, calendars) = tx.sla_definitions().await?;
        let fresh = Arc::new(compile(generation, policies, calendars));
        *self.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<CachedSla>>> {
        // The guarded value is replaced whole, so a poisoned lock still holds a valid one.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compiles saved calendars; one that no longer compiles (say, a time zone
/// dropped from a newer tzdb) counts as 24/7 and is logged, rather than
/// stopping every ticket write.
pub fn compile(
    generation: i64,
    mut policies: Vec<SlaPolicy>,
    calendars: Vec<CalendarRecord>,
) -> CachedSla {
    let mut compiled = BTreeMap::new();
    for record in calendars {
        match record.spec.compile() {
            Ok(calendar) => {
                compiled.insert(record.id, calendar);
            }
            Err(errors) => tracing::warn!(
                calendar = record.id.0,
                ?errors,
                "calendar left out: it no longer validates; its policies count 24/7"
            ),
        }
    }
    policies.sort_by_key(|p| (p.position, p.id));
    CachedSla {
        generation,
        config: SlaConfig::new(policies, compiled),
    }
}

/// Checks a calendar before it is saved; every problem, with its path.
pub fn validate_calendar(spec: &CalendarSpec) -> Result<()> {
    spec.compile()
        .map(|_| ())
        .map_err(StoreError::InvalidConfig)
}

/// Checks a policy before it is saved; `calendar_exists` answers for its calendar.
pub fn validate_policy(spec: &SlaPolicySpec, calendar_exists: bool) -> Result<()> {
    let mut errors = spec.validate().err().unwrap_or_default();
    if let Some(id) = spec.calendar_id
        && !calendar_exists
    {
        errors.push(ConfigError::new(
            "calendar_id",
            format!("no calendar with id {id}"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::InvalidConfig(errors))
    }
}

/// Checks that `order` names every one of `existing` exactly once.
pub fn check_order(existing: &[SlaPolicyId], order: &[SlaPolicyId]) -> Result<()> {
    let mut wanted = order.to_vec();
    wanted.sort();
    let before = wanted.len();
    wanted.dedup();
    if wanted.len() != before {
        return Err(StoreError::invalid(
            "order",
            "names a policy more than once",
        ));
    }
    let mut have = existing.to_vec();
    have.sort();
    if wanted != have {
        return Err(StoreError::invalid(
            "order",
            "must list the id of every policy exactly once",
        ));
    }
    Ok(())
}

/// The job that recomputes open tickets after a configuration change, to be
/// enqueued in the changing transaction; one pending at a time per scope.
pub fn recompute_job(organisation: Option<OrganisationId>, now: Timestamp) -> Result<NewJob> {
    let kind = job_kind(RECOMPUTE_JOB)?;
    let scope = organisation.map_or_else(|| "all".to_string(), |o| o.0.to_string());
    Ok(NewJob::new(
        kind,
        serde_json::json!({ "organisation_id": organisation }),
        now,
    )
    .with_dedupe_key(format!("sla.recompute:{scope}")))
}

fn job_kind(name: &str) -> Result<JobKind> {
    JobKind::parse(name).map_err(|e| StoreError::Backend(format!("job kind: {e}")))
}

/// The dedupe key of one timer job of one ticket.
pub fn timer_job_key(ticket: TicketId, key: &str) -> String {
    format!("sla:{ticket}:{key}")
}

/// Folds one change's events into the ticket's stored SLA state, stores it
/// and re-arms the timers that moved. `firing` is the timer key whose job is
/// recording this change (it is running; cancelling it would void its
/// result). Returns whether any timer job was enqueued.
pub async fn track(
    tx: &mut dyn Tx,
    cache: &SlaCache,
    ticket: &Ticket,
    events: &[Event],
    now: Timestamp,
    firing: Option<&str>,
) -> Result<bool> {
    let cached = cache.current(tx).await?;
    let previous = tx.ticket_sla(ticket.id).await?;
    let opened = events
        .iter()
        .any(|e| matches!(e.kind, tierdesk_core::EventKind::Created { .. }));
    // A desk without policies pays one read per write; a ticket that had no
    // state before the first policy is picked up by the recompute job.
    if previous.is_none() && (cached.config.policies.is_empty() || !opened) {
        return Ok(false);
    }
    let plan = plan_of(tx, ticket).await?;
    let mut state = previous.clone().unwrap_or_default();
    for event in events {
        state.apply(event, &cached.config, plan.as_deref());
    }
    store(tx, ticket.id, previous.as_ref(), &state, now, firing).await
}

async fn plan_of(tx: &mut dyn Tx, ticket: &Ticket) -> Result<Option<String>> {
    match ticket.organisation {
        Some(organisation) => tx.organisation_plan(organisation).await,
        None => Ok(None),
    }
}

async fn store(
    tx: &mut dyn Tx,
    id: TicketId,
    previous: Option<&SlaState>,
    state: &SlaState,
    now: Timestamp,
    firing: Option<&str>,
) -> Result<bool> {
    if previous == Some(state) {
        return Ok(false);
    }
    tx.put_ticket_sla(id, state, now).await?;
    let before: BTreeMap<String, Timestamp> = previous
        .map(|p| {
            p.timers()
                .into_iter()
                .map(|t| (t.key(), t.due_at))
                .collect()
        })
        .unwrap_or_default();
    let after: BTreeMap<String, Timestamp> = state
        .timers()
        .into_iter()
        .map(|t| (t.key(), t.due_at))
        .collect();
    for (key, due) in &before {
        if after.get(key) != Some(due) && firing != Some(key.as_str()) {
            tx.cancel_jobs_in_tx(&timer_job_key(id, key), now).await?;
        }
    }
    let mut armed = false;
    let kind = job_kind(TIMER_JOB)?;
    for (key, due) in &after {
        if before.get(key) == Some(due) {
            continue;
        }
        let job = NewJob::new(
            kind.clone(),
            serde_json::json!({ "ticket_id": id, "key": key }),
            *due,
        )
        .with_dedupe_key(timer_job_key(id, key));
        tx.enqueue_job(job, now).await?;
        armed = true;
    }
    Ok(armed)
}

/// Fires timer `key` of ticket `id` if it is still due at `now`: appends
/// its event as the system, through the change path (rules run). The row
/// lock taken first makes concurrent runs take turns; the second finds the
/// event recorded and does nothing.
pub async fn fire(
    tx: &mut dyn Tx,
    rules: &RuleCache,
    id: TicketId,
    key: &str,
    now: Timestamp,
) -> Result<Option<Change>> {
    let Some(ticket) = tx.ticket_for_update(id).await? else {
        return Ok(None);
    };
    let Some(state) = tx.ticket_sla(id).await? else {
        return Ok(None);
    };
    let Some(kind) = state.fire(key, now) else {
        return Ok(None);
    };
    ops::record_system_events(tx, rules, ticket, vec![kind], now, Some(key))
        .await
        .map(Some)
}

/// Re-selects the policy and recomputes deadlines of ticket `id` at `now`.
pub async fn recompute(
    tx: &mut dyn Tx,
    cache: &SlaCache,
    id: TicketId,
    now: Timestamp,
) -> Result<bool> {
    let Some(ticket) = tx.ticket_for_update(id).await? else {
        return Ok(false);
    };
    let cached = cache.current(tx).await?;
    let plan = plan_of(tx, &ticket).await?;
    let previous = tx.ticket_sla(id).await?;
    let state = match &previous {
        Some(state) => {
            let mut state = state.clone();
            state.reconfigure(now, &cached.config, plan.as_deref());
            state
        }
        None if cached.config.policies.is_empty() => return Ok(false),
        None => {
            // Opened before any policy: the whole history, folded now.
            let timeline = tx.ticket_timeline(id).await?;
            let mut state = SlaState::from_events(&timeline, &cached.config, plan.as_deref());
            state.reconfigure(now, &cached.config, plan.as_deref());
            state
        }
    };
    store(tx, id, previous.as_ref(), &state, now, None).await
}
