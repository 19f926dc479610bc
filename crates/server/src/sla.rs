//! SLAs at the edge: the per-target SLA state agents see on tickets, and the
//! job handlers that fire timers (`sla.timer`) and recompute open tickets
//! after a plan or configuration change (`sla.recompute`).

use crate::AppState;
use crate::error::ApiResult;
use crate::views::{AnyTicketView, rfc3339};
use crate::worker::{JobContext, JobHandler, Registry};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use tierdesk_core::ids::SlaPolicyId;
use tierdesk_core::job::{JobKind, Outcome};
use tierdesk_core::sla::{Phase, SlaConfig, SlaState, TargetKind};
use tierdesk_core::{OrganisationId, TicketId, Timestamp};
use tierdesk_store::Store;
use tierdesk_store::sla::{RECOMPUTE_JOB, TIMER_JOB};
use utoipa::ToSchema;

/// A ticket's SLA as agents see it. Customers never get it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketSlaView {
    /// The policy in force; `null` when none covers the ticket.
    pub policy_id: Option<SlaPolicyId>,
    /// Some outstanding target has breached.
    pub breached: bool,
    /// Some running target passed its warning threshold, none breached.
    pub warning: bool,
    /// Every outstanding target is paused (waiting on the customer, or solved).
    pub paused: bool,
    /// The earliest deadline among running targets.
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// Targets the policy sets, in the order first response, next response, resolution.
    pub targets: Vec<TargetSlaView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetSlaView {
    /// `first_response`, `next_response` or `resolution`.
    pub target: String,
    /// `idle`, `running`, `paused`, `met` or `stopped`.
    pub state: String,
    /// Next-response cycle (1, 2, …); 0 for the other targets.
    pub cycle: u32,
    pub target_ms: i64,
    /// Business time left now; negative once breached.
    pub remaining_business_ms: i64,
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    #[schema(format = DateTime)]
    pub warn_at: Option<String>,
    #[schema(format = DateTime)]
    pub breached_at: Option<String>,
    pub paused: bool,
    pub breached: bool,
    pub warning: bool,
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Idle => "idle",
        Phase::Running { .. } => "running",
        Phase::Paused { .. } => "paused",
        Phase::Met { .. } => "met",
        Phase::Stopped { .. } => "stopped",
    }
}

/// The view of one ticket's SLA state at `now`.
pub fn view(state: &SlaState, config: &SlaConfig, now: Timestamp) -> TicketSlaView {
    let facts = state.facts();
    let targets = TargetKind::ALL
        .iter()
        .filter_map(|kind| {
            let target = state.target(*kind);
            let target_ms = target.target_ms?;
            let remaining = state.remaining_at(*kind, now, config).unwrap_or(target_ms);
            let outstanding = matches!(target.phase, Phase::Running { .. } | Phase::Paused { .. });
            let breached = target.breached_at.is_some() || (outstanding && remaining <= 0);
            Some(TargetSlaView {
                target: kind.to_string(),
                state: phase_name(target.phase).to_string(),
                cycle: target.cycle,
                target_ms,
                remaining_business_ms: remaining,
                due_at: target.due_at.map(rfc3339),
                warn_at: target.warn_at.map(rfc3339),
                breached_at: target.breached_at.map(rfc3339),
                paused: matches!(target.phase, Phase::Paused { .. }),
                breached,
                warning: outstanding
                    && !breached
                    && matches!(target.phase, Phase::Running { .. })
                    && target.warn_at.is_some_and(|w| w <= now),
            })
        })
        .collect();
    TicketSlaView {
        policy_id: state.policy,
        breached: facts.is_breached(now),
        warning: facts.is_warning(now),
        paused: facts.paused,
        due_at: facts.due_at.map(rfc3339),
        targets,
    }
}

/// Fills in the SLA of every agent view in `views` (customer views stay bare).
pub(crate) async fn decorate(state: &AppState, views: &mut [AnyTicketView]) -> ApiResult<()> {
    let ids: Vec<TicketId> = views
        .iter()
        .filter_map(|v| match v {
            AnyTicketView::Agent(t) => Some(t.id),
            AnyTicketView::Customer(_) => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let states = state.store().ticket_slas(&ids).await?;
    if states.is_empty() {
        return Ok(());
    }
    let config = state.store().sla_config().await?;
    let now = state.now();
    for v in views.iter_mut() {
        if let AnyTicketView::Agent(t) = v
            && let Some(sla) = states.get(&t.id)
        {
            t.sla = Some(view(sla, &config.config, now));
        }
    }
    Ok(())
}

/// Registers the SLA job handlers on `registry`.
pub fn register(registry: Registry, store: Arc<dyn Store>) -> Registry {
    let (Ok(timer), Ok(recompute)) = (JobKind::parse(TIMER_JOB), JobKind::parse(RECOMPUTE_JOB))
    else {
        return registry;
    };
    registry
        .handle(
            timer,
            FireTimer {
                store: store.clone(),
            },
        )
        .handle(recompute, Recompute { store })
}

/// `sla.timer`: records the warning or breach if the timer is still due.
pub struct FireTimer {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl JobHandler for FireTimer {
    async fn run(&self, job: &JobContext) -> Outcome {
        let payload = job.payload();
        let (Some(ticket), Some(key)) = (
            payload.get("ticket_id").and_then(serde_json::Value::as_i64),
            payload.get("key").and_then(serde_json::Value::as_str),
        ) else {
            return Outcome::permanent("the payload needs ticket_id and key");
        };
        match self
            .store
            .fire_sla_timer(TicketId(ticket), key, crate::now())
            .await
        {
            Ok(Some(change)) => {
                let lag_ms = change
                    .events
                    .first()
                    .map(|e| e.event.at.0 - job.job.due_at.0);
                tracing::info!(ticket, key, lag_ms, "SLA timer fired");
                Outcome::done()
            }
            Ok(None) => Outcome::done(),
            Err(e) => Outcome::temporary(e.to_string()),
        }
    }
}

/// How many tickets one recompute pass reads at a time.
const RECOMPUTE_BATCH: u32 = 200;

/// `sla.recompute`: re-selects policies and recomputes deadlines of open
/// tickets (of one organisation, or all).
pub struct Recompute {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl JobHandler for Recompute {
    async fn run(&self, job: &JobContext) -> Outcome {
        let organisation = job
            .payload()
            .get("organisation_id")
            .and_then(serde_json::Value::as_i64)
            .map(OrganisationId);
        let mut after = TicketId(0);
        loop {
            let ids = match self
                .store
                .open_ticket_ids(organisation, after, RECOMPUTE_BATCH)
                .await
            {
                Ok(ids) => ids,
                Err(e) => return Outcome::temporary(e.to_string()),
            };
            let Some(last) = ids.last().copied() else {
                break;
            };
            for id in ids {
                if let Err(e) = self.store.recompute_ticket_sla(id, crate::now()).await {
                    return Outcome::temporary(format!("ticket {id}: {e}"));
                }
            }
            after = last;
        }
        Outcome::done()
    }
}
