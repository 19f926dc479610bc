//! SLA policies and the SLA clock.
//!
//! A **policy** is data (JSON) edited by admins: which tickets it covers
//! (priority, tier, organisation plan, channel; empty lists match anything),
//! its targets, optionally overridden per tier, the business-hours calendar
//! they count in, which statuses pause the clock, and when to warn. Policies
//! are ordered; the first enabled one that matches a ticket applies.
//!
//! The **clock** folds a ticket's events into an [`SlaState`]: per target the
//! business time elapsed, whether it is running, paused, met or stopped, its
//! deadline and warning time, and whether it breached. The state is stored
//! with the ticket and updated incrementally ([`SlaState::apply`]) with each
//! new event; folding the whole history gives the same result. [`SlaState::timers`]
//! says which durable jobs should exist; the caller upserts them by key and
//! cancels the rest, and a fired job asks [`SlaState::fire`] whether it is
//! still due, which answers with the event to append (exactly once, because
//! that event is folded back and retires the timer).
//!
//! What the targets measure, precisely:
//!
//! - **First response**: from the ticket's creation until the first public
//!   reply by a human agent (an `agent_reply` whose actor is an agent;
//!   auto-replies by rules or the system do not count).
//! - **Next response**: once the first response happened, a customer message
//!   arriving while no next-response clock is running starts a new cycle;
//!   further customer messages do not restart it; the next public reply by a
//!   human agent meets it. Each cycle has its own target, timers and breach.
//! - **Resolution**: from creation until the ticket is solved. Reopening a
//!   solved ticket resumes the same clock with the elapsed time kept (and a
//!   breach, once happened, stays).
//!
//! Every running clock pauses while the ticket's status is in the policy's
//! `pause_when` (by default pending and on-hold: waiting on the customer) and
//! while it is solved; closing a ticket stops every clock for good. Clocks
//! count business time on the policy's calendar (24/7 when none).
//!
//! The policy is selected again after every event, so a change of priority or
//! tier (or, through [`SlaState::reconfigure`], of the organisation's plan or
//! of the policies themselves) takes effect at once: elapsed time is kept and
//! deadlines are recomputed against the new targets. A target that shrinks
//! below the time already elapsed breaches at that moment.

use crate::calendar::Calendar;
use crate::event::{Actor, Event, EventKind};
use crate::ids::{CalendarId, SlaPolicyId};
use crate::ticket::{Channel, Priority, Status, Tier, string_enum};
use crate::time::Timestamp;
use crate::validate::{self, ConfigError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// What an SLA target measures; see the module docs.
    TargetKind { FirstResponse = "first_response", NextResponse = "next_response", Resolution = "resolution" }
);

string_enum!(
    /// The two timers a running target has.
    TimerKind { Warning = "warning", Breach = "breach" }
);

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Longest target accepted: a year of business time.
const MAX_TARGET_MS: i64 = 366 * 24 * HOUR_MS;

/// An amount of business time, written `30m`, `4h`, `1h30m` or `45s` in
/// JSON (seconds serve tight chat targets and tests). There are no days: a
/// "business day" means different things on different calendars, so
/// targets are said in hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusinessDuration(i64);

impl BusinessDuration {
    pub fn from_minutes(minutes: i64) -> Self {
        Self(minutes.saturating_mul(MINUTE_MS))
    }
    pub fn from_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(SECOND_MS))
    }
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl FromStr for BusinessDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a duration like 30m, 4h, 1h30m or 45s");
        // Units in descending order, each at most once: h, then m, then s.
        let mut rest = text;
        let mut ms: i64 = 0;
        let mut any = false;
        for (unit, unit_ms) in [('h', HOUR_MS), ('m', MINUTE_MS), ('s', SECOND_MS)] {
            let Some((count, after)) = rest.split_once(unit) else {
                continue;
            };
            if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let count: i64 = count.parse().map_err(|_| bad())?;
            ms = count
                .checked_mul(unit_ms)
                .and_then(|part| ms.checked_add(part))
                .ok_or_else(bad)?;
            rest = after;
            any = true;
        }
        if !any || !rest.is_empty() {
            return Err(bad());
        }
        if ms <= 0 || ms > MAX_TARGET_MS {
            return Err(format!("{text:?} must be between 1s and 8784h"));
        }
        Ok(Self(ms))
    }
}

impl fmt::Display for BusinessDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0 / SECOND_MS;
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for BusinessDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BusinessDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which tickets a policy covers. Each empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaMatch {
    #[serde(default)]
    pub priorities: Vec<Priority>,
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// Organisation plans, compared case-insensitively. A ticket without an
    /// organisation has no plan and matches only an empty list.
    #[serde(default)]
    pub plans: Vec<String>,
    #[serde(default)]
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<BusinessDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response: Option<BusinessDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<BusinessDuration>,
}

impl Targets {
    pub fn get(&self, kind: TargetKind) -> Option<BusinessDuration> {
        match kind {
            TargetKind::FirstResponse => self.first_response,
            TargetKind::NextResponse => self.next_response,
            TargetKind::Resolution => self.resolution,
        }
    }

    /// `self` with every target `over` sets replaced.
    fn overridden_by(self, over: &Targets) -> Targets {
        Targets {
            first_response: over.first_response.or(self.first_response),
            next_response: over.next_response.or(self.next_response),
            resolution: over.resolution.or(self.resolution),
        }
    }

    fn is_empty(&self) -> bool {
        TargetKind::ALL.iter().all(|k| self.get(*k).is_none())
    }
}

fn yes() -> bool {
    true
}

fn waiting_on_customer() -> Vec<Status> {
    vec![Status::Pending, Status::OnHold]
}

fn three_quarters() -> u8 {
    75
}

/// A policy as configured and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicySpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub applies_to: SlaMatch,
    /// The business-hours calendar targets count in; 24/7 when absent.
    #[serde(default)]
    pub calendar_id: Option<CalendarId>,
    #[serde(default)]
    pub targets: Targets,
    /// Per-tier targets, overriding `targets` where set; keyed `"1"`–`"3"`.
    #[serde(default, with = "tier_keys")]
    pub tiers: BTreeMap<Tier, Targets>,
    /// Statuses that pause every running clock (pending and on_hold only).
    #[serde(default = "waiting_on_customer")]
    pub pause_when: Vec<Status>,
    /// Warn when this share of a target has elapsed; 0 sends no warnings.
    #[serde(default = "three_quarters")]
    pub warning_percent: u8,
}

/// Tier keys written as strings, so they survive `#[serde(flatten)]`, which
/// hands map keys over as text.
mod tier_keys {
    use super::{Targets, Tier};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<Tier, Targets>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<String, &Targets> =
            map.iter().map(|(k, v)| (k.to_string(), v)).collect();
        text.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Tier, Targets>, D::Error> {
        BTreeMap::<String, Targets>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| Ok((k.parse().map_err(serde::de::Error::custom)?, v)))
            .collect()
    }
}

/// A saved policy: its spec plus identity and order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub id: SlaPolicyId,
    pub position: i64,
    #[serde(flatten)]
    pub spec: SlaPolicySpec,
}

impl SlaPolicySpec {
    /// Checks everything a save must refuse, collecting every problem.
    /// Whether `calendar_id` exists is for the store to check.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        validate::config_name(&mut errors, "name", &self.name);
        for (i, plan) in self.applies_to.plans.iter().enumerate() {
            if let Err(e) = validate::single_line(plan, validate::NAME_MAX_CHARS) {
                errors.push(ConfigError::new(
                    format!("applies_to.plans[{i}]"),
                    e.to_string(),
                ));
            }
        }
        if self.targets.is_empty() && self.tiers.values().all(Targets::is_empty) {
            errors.push(ConfigError::new("targets", "needs at least one target"));
        }
        for (i, status) in self.pause_when.iter().enumerate() {
            if !matches!(status, Status::Pending | Status::OnHold) {
                errors.push(ConfigError::new(
                    format!("pause_when[{i}]"),
                    format!("only pending and on_hold can pause the clock, not {status}"),
                ));
            }
        }
        if self.warning_percent >= 100 {
            errors.push(ConfigError::new(
                "warning_percent",
                "must be below 100 (0 sends no warnings)",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The targets in force for a ticket of `tier`.
    pub fn targets_for(&self, tier: Tier) -> Targets {
        match self.tiers.get(&tier) {
            Some(over) => self.targets.overridden_by(over),
            None => self.targets,
        }
    }

    fn covers(&self, subject: &SlaSubject<'_>) -> bool {
        let m = &self.applies_to;
        (m.priorities.is_empty() || m.priorities.contains(&subject.priority))
            && (m.tiers.is_empty() || m.tiers.contains(&subject.tier))
            && (m.channels.is_empty() || m.channels.contains(&subject.channel))
            && (m.plans.is_empty()
                || subject
                    .plan
                    .is_some_and(|plan| m.plans.iter().any(|p| p.eq_ignore_ascii_case(plan))))
    }
}

/// What policy selection looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaSubject<'a> {
    pub priority: Priority,
    pub tier: Tier,
    pub channel: Channel,
    /// The plan of the ticket's organisation, looked up by the caller.
    pub plan: Option<&'a str>,
}

/// The first enabled policy, in (position, id) order, covering `subject`.
pub fn select_policy<'a>(
    policies: &'a [SlaPolicy],
    subject: &SlaSubject<'_>,
) -> Option<&'a SlaPolicy> {
    policies
        .iter()
        .filter(|p| p.spec.enabled && p.spec.covers(subject))
        .min_by_key(|p| (p.position, p.id))
}

/// Policies and compiled calendars, as the clock needs them. Built once by
/// the caller and reused for every ticket.
#[derive(Debug, Clone)]
pub struct SlaConfig {
    pub policies: Vec<SlaPolicy>,
    pub calendars: BTreeMap<CalendarId, Calendar>,
    around_the_clock: Calendar,
}

impl SlaConfig {
    pub fn new(policies: Vec<SlaPolicy>, calendars: BTreeMap<CalendarId, Calendar>) -> Self {
        Self {
            policies,
            calendars,
            around_the_clock: Calendar::always_open(),
        }
    }

    /// The calendar named, or 24/7 when none is named (or it was deleted,
    /// which the store prevents).
    pub fn calendar(&self, id: Option<CalendarId>) -> &Calendar {
        id.and_then(|id| self.calendars.get(&id))
            .unwrap_or(&self.around_the_clock)
    }
}

/// Where one target's clock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Nothing to measure (a next response with no customer waiting).
    Idle,
    /// Counting business time since `since` (the last event).
    Running {
        since: Timestamp,
    },
    /// Outstanding, but the ticket waits on the customer or is solved.
    Paused {
        since: Timestamp,
    },
    Met {
        at: Timestamp,
    },
    /// The ticket closed before the target was met; final.
    Stopped {
        at: Timestamp,
    },
}

impl Phase {
    fn is_outstanding(self) -> bool {
        matches!(self, Phase::Running { .. } | Phase::Paused { .. })
    }
}

/// One target's clock, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub kind: TargetKind,
    pub phase: Phase,
    /// Counts next-response cycles (1, 2, …); 0 for the other targets.
    pub cycle: u32,
    pub started_at: Option<Timestamp>,
    /// Business time elapsed up to the last event.
    pub elapsed_ms: i64,
    /// The target in force; `None` when the policy sets none (or no policy applies).
    pub target_ms: Option<i64>,
    /// When the target will breach, while it runs and has not breached.
    pub due_at: Option<Timestamp>,
    /// When the warning threshold is (or was) reached, while it runs and has not breached.
    pub warn_at: Option<Timestamp>,
    /// When the target breached: its deadline passed, or it shrank below the elapsed time.
    pub breached_at: Option<Timestamp>,
    /// The `sla_warning` / `sla_breached` events of this cycle were recorded.
    pub warning_recorded: bool,
    pub breach_recorded: bool,
}

impl TargetState {
    fn new(kind: TargetKind) -> Self {
        Self {
            kind,
            phase: Phase::Idle,
            cycle: 0,
            started_at: None,
            elapsed_ms: 0,
            target_ms: None,
            due_at: None,
            warn_at: None,
            breached_at: None,
            warning_recorded: false,
            breach_recorded: false,
        }
    }

    fn start(&mut self, at: Timestamp) {
        self.phase = Phase::Paused { since: at };
        self.started_at = Some(at);
    }

    fn meet(&mut self, at: Timestamp) {
        if self.phase.is_outstanding() {
            self.phase = Phase::Met { at };
        }
    }

    fn met_at(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Met { at } => Some(at),
            _ => None,
        }
    }
}

/// A durable job the caller should hold for a ticket, identified by `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub target: TargetKind,
    pub kind: TimerKind,
    pub cycle: u32,
    pub due_at: Timestamp,
}

impl Timer {
    /// Stable within a ticket, e.g. `next_response.2.breach`: the same key
    /// with a new due time means "move the job", a key no longer listed
    /// means "cancel it".
    pub fn key(&self) -> String {
        format!("{}.{}.{}", self.target, self.cycle, self.kind)
    }
}

/// The SLA state of one ticket: the fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaState {
    pub policy: Option<SlaPolicyId>,
    pub calendar: Option<CalendarId>,
    /// First response, next response, resolution, in that order.
    pub targets: Vec<TargetState>,
    pub status: Status,
    pub priority: Priority,
    pub tier: Tier,
    pub channel: Channel,
}

impl Default for SlaState {
    fn default() -> Self {
        Self {
            policy: None,
            calendar: None,
            targets: TargetKind::ALL
                .iter()
                .map(|k| TargetState::new(*k))
                .collect(),
            status: Status::New,
            priority: Priority::P3,
            tier: Tier::ONE,
            channel: Channel::Email,
        }
    }
}

fn kind_index(kind: TargetKind) -> usize {
    match kind {
        TargetKind::FirstResponse => 0,
        TargetKind::NextResponse => 1,
        TargetKind::Resolution => 2,
    }
}

impl SlaState {
    /// Folds a whole history. `plan` is the organisation's current plan.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a Event>,
        config: &SlaConfig,
        plan: Option<&str>,
    ) -> SlaState {
        let mut state = SlaState::default();
        for event in events {
            state.apply(event, config, plan);
        }
        state
    }

    pub fn target(&self, kind: TargetKind) -> &TargetState {
        &self.targets[kind_index(kind)]
    }

    fn target_mut(&mut self, kind: TargetKind) -> &mut TargetState {
        &mut self.targets[kind_index(kind)]
    }

    /// Applies one event, in order, after the events already folded.
    pub fn apply(&mut self, event: &Event, config: &SlaConfig, plan: Option<&str>) {
        let at = event.at;
        self.advance(at, config);
        match &event.kind {
            EventKind::Created {
                priority,
                tier,
                channel,
                ..
            } => {
                *self = SlaState {
                    priority: *priority,
                    tier: *tier,
                    channel: *channel,
                    ..SlaState::default()
                };
                self.target_mut(TargetKind::FirstResponse).start(at);
                self.target_mut(TargetKind::Resolution).start(at);
            }
            EventKind::AgentReply { .. } if matches!(event.actor, Actor::Agent { .. }) => {
                self.target_mut(TargetKind::FirstResponse).meet(at);
                self.target_mut(TargetKind::NextResponse).meet(at);
            }
            EventKind::CustomerMessage { .. } => {
                let answered_once = self.target(TargetKind::FirstResponse).met_at().is_some();
                let next = self.target_mut(TargetKind::NextResponse);
                if answered_once && !next.phase.is_outstanding() {
                    let cycle = next.cycle + 1;
                    *next = TargetState {
                        cycle,
                        ..TargetState::new(TargetKind::NextResponse)
                    };
                    next.start(at);
                }
            }
            EventKind::StatusChanged { from, to } => {
                self.status = *to;
                let resolution = self.target_mut(TargetKind::Resolution);
                match to {
                    Status::Solved => resolution.meet(at),
                    Status::Closed => {
                        for target in &mut self.targets {
                            if target.phase.is_outstanding() {
                                target.phase = Phase::Stopped { at };
                            }
                        }
                    }
                    _ if *from == Status::Solved && resolution.met_at().is_some() => {
                        // Reopened: the same clock resumes with its time kept.
                        resolution.phase = Phase::Paused { since: at };
                    }
                    _ => {}
                }
            }
            EventKind::PriorityChanged { to, .. } => self.priority = *to,
            EventKind::TierChanged { to, .. } => self.tier = *to,
            EventKind::SlaWarning { target, .. } => {
                self.target_mut(*target).warning_recorded = true;
            }
            EventKind::SlaBreached { target, due_at } => {
                let target = self.target_mut(*target);
                target.breach_recorded = true;
                target.breached_at.get_or_insert(*due_at);
            }
            _ => {}
        }
        self.settle(at, config, plan);
    }

    /// Re-selects the policy and recomputes deadlines at `at` without an
    /// event: the organisation's plan changed, or policies or calendars were
    /// edited. Call [`SlaState::timers`] afterwards.
    pub fn reconfigure(&mut self, at: Timestamp, config: &SlaConfig, plan: Option<&str>) {
        self.advance(at, config);
        self.settle(at, config, plan);
    }

    /// Counts the business time of running clocks up to `at` and notes
    /// deadlines passed on the way.
    fn advance(&mut self, at: Timestamp, config: &SlaConfig) {
        let calendar = config.calendar(self.calendar);
        for target in &mut self.targets {
            let Phase::Running { since } = target.phase else {
                continue;
            };
            if at <= since {
                continue;
            }
            target.elapsed_ms += calendar.business_time_between(since, at);
            target.phase = Phase::Running { since: at };
            if target.breached_at.is_none()
                && let Some(due) = target.due_at.filter(|due| *due <= at)
            {
                target.breached_at = Some(due);
            }
        }
    }

    /// After an event: picks the policy, pauses or resumes clocks, and
    /// recomputes targets, deadlines and warnings.
    fn settle(&mut self, at: Timestamp, config: &SlaConfig, plan: Option<&str>) {
        let subject = SlaSubject {
            priority: self.priority,
            tier: self.tier,
            channel: self.channel,
            plan,
        };
        let policy = select_policy(&config.policies, &subject);
        self.policy = policy.map(|p| p.id);
        self.calendar = policy.and_then(|p| p.spec.calendar_id);
        let default_pause = waiting_on_customer();
        let pause_when = policy.map_or(&default_pause, |p| &p.spec.pause_when);
        let runs = !pause_when.contains(&self.status)
            && !matches!(self.status, Status::Solved | Status::Closed);
        let targets = policy.map(|p| p.spec.targets_for(self.tier));
        let warning_percent = policy.map_or(0, |p| i64::from(p.spec.warning_percent));
        let calendar = config.calendar(self.calendar);
        for target in &mut self.targets {
            target.phase = match target.phase {
                Phase::Running { .. } if !runs => Phase::Paused { since: at },
                Phase::Paused { .. } if runs => Phase::Running { since: at },
                phase => phase,
            };
            target.target_ms = targets.and_then(|t| t.get(target.kind)).map(|d| d.millis());
            target.due_at = None;
            target.warn_at = None;
            let Some(limit) = target.target_ms else {
                continue;
            };
            if !target.phase.is_outstanding() || target.breached_at.is_some() {
                continue;
            }
            if target.elapsed_ms >= limit {
                target.breached_at = Some(at);
                continue;
            }
            if let Phase::Running { since } = target.phase {
                target.due_at = calendar.add_business_time(since, limit - target.elapsed_ms);
                let threshold = limit * warning_percent / 100;
                if threshold > 0 {
                    target.warn_at = if target.elapsed_ms >= threshold {
                        Some(since)
                    } else {
                        calendar.add_business_time(since, threshold - target.elapsed_ms)
                    };
                }
            }
        }
    }

    /// The jobs that should exist now. A breach is recorded exactly once per
    /// target cycle, even when the target was met late before its job ran;
    /// a warning only while the target still runs and has not breached.
    pub fn timers(&self) -> Vec<Timer> {
        let mut timers = Vec::new();
        for target in &self.targets {
            if target.target_ms.is_none() {
                continue;
            }
            if !target.breach_recorded
                && let Some(due_at) = target.breached_at.or(target.due_at)
            {
                timers.push(Timer {
                    target: target.kind,
                    kind: TimerKind::Breach,
                    cycle: target.cycle,
                    due_at,
                });
            }
            if !target.warning_recorded
                && target.breached_at.is_none()
                && let Some(due_at) = target.warn_at
            {
                timers.push(Timer {
                    target: target.kind,
                    kind: TimerKind::Warning,
                    cycle: target.cycle,
                    due_at,
                });
            }
        }
        timers
    }

    /// What a job with `key` that fires at `now` should record: the event to
    /// append (actor: system), or `None` when the timer is stale or not yet
    /// due (it was moved or cancelled since it was scheduled).
    pub fn fire(&self, key: &str, now: Timestamp) -> Option<EventKind> {
        let timer = self
            .timers()
            .into_iter()
            .find(|t| t.key() == key && t.due_at <= now)?;
        let target = self.target(timer.target);
        let due_at = target.breached_at.or(target.due_at)?;
        Some(match timer.kind {
            TimerKind::Warning => EventKind::SlaWarning {
                target: timer.target,
                due_at,
            },
            TimerKind::Breach => EventKind::SlaBreached {
                target: timer.target,
                due_at,
            },
        })
    }

    /// Business time elapsed on a target as of `now`.
    pub fn elapsed_at(&self, kind: TargetKind, now: Timestamp, config: &SlaConfig) -> i64 {
        let target = self.target(kind);
        match target.phase {
            Phase::Running { since } => {
                target.elapsed_ms
                    + config
                        .calendar(self.calendar)
                        .business_time_between(since, now)
            }
            _ => target.elapsed_ms,
        }
    }

    /// Business time left on a target as of `now`; negative once breached,
    /// `None` without a target.
    pub fn remaining_at(
        &self,
        kind: TargetKind,
        now: Timestamp,
        config: &SlaConfig,
    ) -> Option<i64> {
        let limit = self.target(kind).target_ms?;
        Some(limit - self.elapsed_at(kind, now, config))
    }

    /// The columns views filter on, summed over outstanding targets.
    pub fn facts(&self) -> SlaFacts {
        let outstanding = self
            .targets
            .iter()
            .filter(|t| t.phase.is_outstanding() && t.target_ms.is_some());
        let mut facts = SlaFacts::default();
        let mut running = false;
        let mut paused = false;
        for target in outstanding {
            running |= matches!(target.phase, Phase::Running { .. });
            paused |= matches!(target.phase, Phase::Paused { .. });
            facts.breached_at = earliest(facts.breached_at, target.breached_at);
            facts.due_at = earliest(facts.due_at, target.due_at);
            facts.warn_at = earliest(facts.warn_at, target.warn_at);
        }
        facts.paused = paused && !running;
        facts
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A ticket's SLA as the views query language sees it, stored as columns
/// next to the ticket (`sla_due_at`, `sla_warn_at`, `sla_breached_at`,
/// `sla_paused`) so lists can filter and sort without folding events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaFacts {
    /// The earliest deadline among running targets that have not breached.
    pub due_at: Option<Timestamp>,
    /// The earliest warning time among those.
    pub warn_at: Option<Timestamp>,
    /// The earliest breach among targets still outstanding (running or
    /// paused); a target met late is history, not a breach to act on.
    pub breached_at: Option<Timestamp>,
    /// Outstanding targets exist and all of them are paused.
    pub paused: bool,
}

impl SlaFacts {
    /// Some outstanding target has breached by `now`.
    pub fn is_breached(&self, now: Timestamp) -> bool {
        self.breached_at.is_some() || self.due_at.is_some_and(|due| due <= now)
    }

    /// Some running target passed its warning threshold and none breached.
    pub fn is_warning(&self, now: Timestamp) -> bool {
        !self.is_breached(now) && self.warn_at.is_some_and(|warn| warn <= now)
    }
}

#[cfg(test)]
mod tests;
