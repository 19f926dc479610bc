//! The live event stream: every ticket event, as Server-Sent Events, for
//! agents on any instance.
//!
//! The database is the source of truth. The store's event signal only says
//! "events up to id N are committed"; the stream then reads them by id with
//! `events_after`. A slow client, a missed wake-up or a reconnect therefore
//! never loses an event: the stream resumes from the last id it sent (or
//! the client's `Last-Event-ID`).

use super::notifications::NotificationView;
use crate::AppState;
use crate::auth::{Caller, Identity, authenticate};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::QueryParams;
use crate::views::StreamEventView;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierdesk_core::{AgentId, EventId, TicketId};
use tierdesk_store::{Notification, Store, StoredEvent};
use tokio::sync::watch;

/// Events read per query while catching up.
const PAGE: u32 = 500;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Re-read this often even without a signal: a safety net, not the mechanism.
const RECHECK: Duration = Duration::from_secs(5);
/// An open stream checks its credential again this often, so a revoked
/// token, a signed-out session or a deactivated agent is cut off.
const REAUTHENTICATE: Duration = Duration::from_secs(5);

const PARAMS: &[&str] = &["after", "ticket"];

#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (what an `EventSource` sends when it reconnects). Takes precedence over `after`."),
        ("after" = Option<i64>, Query, description = "Start after this event id; `0` replays every event. Without this and without `Last-Event-ID` the stream starts now, with new events only."),
        ("ticket" = Option<i64>, Query, description = "Only this ticket's events."),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamEventView,
         description = "A Server-Sent Events stream, agents only. Each event has `id:` (the event id, increasing), `event:` (the event type, e.g. `created`, `status_changed`) and `data:` (the timeline entry as `GET /tickets/{id}` shows it, plus `ticket_id`). Comment lines keep the connection alive every 15 s. Events committed on any instance sharing the database are delivered, in id order, each once. The streaming agent's own new notifications arrive as `event: notification` messages (`id:` the last event id sent; `data:` as in `GET /notifications`)."),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Response> {
    let agent = caller.agent()?.id;
    query.allow_only(PARAMS)?;
    let ticket = query.parse::<i64>("ticket")?.map(TicketId);
    // Subscribe before choosing "now", so nothing committed in between is
    // left waiting for the next signal.
    let signal = state.store().event_signal();
    let start = match last_event_id(&headers)? {
        Some(id) => id,
        None => match query.parse::<i64>("after")? {
            Some(after) if after < 0 => {
                return Err(ApiError::invalid("after", "must not be negative"));
            }
            Some(after) => EventId(after),
            None => state.store().last_event_id().await?,
        },
    };
    // Notifications are live only: older ones are listed by `/notifications`.
    let notification_position = state.store().last_notification_id().await?;
    let mut credential = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for value in headers.get_all(&name) {
            credential.append(name.clone(), value.clone());
        }
    }
    let follower = Follower {
        store: state.store_arc(),
        state: state.clone(),
        credential,
        authenticated_at: Instant::now(),
        signal,
        shutdown: state.shutdown_signal(),
        position: start,
        ticket,
        pending: VecDeque::new(),
        agent,
        notification_position,
        pending_notifications: VecDeque::new(),
    };
    let events = futures::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((Ok::<_, Infallible>(event), follower))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // nginx and similar proxies would otherwise buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<EventId>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if id >= 0 => Ok(Some(EventId(id))),
        _ => Err(ApiError::invalid(
            "Last-Event-ID",
            format!("{text:?} is not an event id this server sent"),
        )),
    }
}

/// One subscriber's position in the event table.
struct Follower {
    store: Arc<dyn Store>,
    state: AppState,
    /// The request's credential headers, to check again while streaming.
    credential: HeaderMap,
    authenticated_at: Instant,
    signal: watch::Receiver<EventId>,
    shutdown: watch::Receiver<bool>,
    /// The id of the last event read (sent or filtered out).
    position: EventId,
    ticket: Option<TicketId>,
    pending: VecDeque<StoredEvent>,
    /// The agent streaming: their new notifications are sent too, as
    /// `event: notification` messages carrying the id of the last event
    /// sent (ids stay the event log's, for resuming).
    agent: AgentId,
    notification_position: i64,
    pending_notifications: VecDeque<Notification>,
}

impl Follower {
    /// The next event to send; `None` ends the stream (shutdown, or the
    /// store failed, and the client resumes with `Last-Event-ID`).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.shutdown.borrow() || !self.still_allowed().await {
                return None;
            }
            if let Some(stored) = self.pending.pop_front() {
                match Event::default()
                    .id(stored.id.to_string())
                    .event(stored.event.kind.name())
                    .json_data(StreamEventView::new(&stored))
                {
                    Ok(event) => return Some(event),
                    Err(e) => {
                        tracing::error!(error = %e, event = %stored.id, "could not render an event");
                        continue;
                    }
                }
            }
            // A notification waits until its event has been read (and so
            // sent), whatever order the two reads saw the commit in.
            if let Some(notification) = self
                .pending_notifications
                .pop_front_if(|n| n.event <= self.position)
            {
                // Sent once every event read so far is sent, with that
                // event's id: resuming from it loses nothing.
                match Event::default()
                    .id(self.position.to_string())
                    .event("notification")
                    .json_data(NotificationView::from(notification))
                {
                    Ok(event) => return Some(event),
                    Err(e) => {
                        tracing::error!(error = %e, "could not render a notification");
                        continue;
                    }
                }
            }
            // Mark the signal seen before reading, so a commit that lands
            // after the read still wakes the wait below.
            self.signal.borrow_and_update();
            let page = match self.store.events_after(self.position, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream could not read events; closing it");
                    return None;
                }
            };
            match self
                .store
                .notifications_after(self.agent, self.notification_position, PAGE)
                .await
            {
                Ok(notifications) => {
                    if let Some(last) = notifications.last() {
                        self.notification_position = last.id;
                    }
                    self.pending_notifications.extend(notifications);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream could not read notifications; closing it");
                    return None;
                }
            }
            if let Some(last) = page.last() {
                self.position = last.id;
                let ticket = self.ticket;
                self.pending.extend(
                    page.into_iter()
                        .filter(|e| ticket.is_none_or(|t| e.event.ticket == t)),
                );
                continue;
            }
            if self
                .pending_notifications
                .front()
                .is_some_and(|n| n.event <= self.position)
            {
                continue;
            }
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.shutdown.wait_for(|down| *down) => return None,
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Whether the credential still belongs to an active agent, checked at
    /// most every [`REAUTHENTICATE`].
    async fn still_allowed(&mut self) -> bool {
        if self.authenticated_at.elapsed() < REAUTHENTICATE {
            return true;
        }
        match authenticate(&self.credential, &self.state).await {
            Ok(Some(Caller {
                identity: Identity::Agent(_),
                ..
            })) => {
                self.authenticated_at = Instant::now();
                true
            }
            Ok(_) => {
                tracing::info!("event stream closed: its credential no longer admits an agent");
                false
            }
            Err(e) => {
                tracing::info!(
                    code = e.code,
                    "event stream closed: credential check failed"
                );
                false
            }
        }
    }
}
