//! Contacts, organisations and agents.

use super::created;
use super::tickets::next_page;
use crate::AppState;
use crate::auth::{Caller, check_new_password, hash_password_blocking};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, PathId, QueryParams, double_option};
use crate::views::{AgentView, ContactPage, ContactView, OrganisationPage, OrganisationView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tierdesk_core::validate::{self, NAME_MAX_CHARS};
use tierdesk_core::{AgentId, ContactId, OrganisationId, Role, TeamId, Tier};
use tierdesk_store::{
    AgentPatch, ContactFilter, ContactPatch, NewAgent, NewContact, NewOrganisation,
    OrganisationPatch,
};
use utoipa::ToSchema;

const PHONE_MAX_CHARS: usize = 64;
const PLAN_MAX_CHARS: usize = 64;
const DEFAULT_PLAN: &str = "standard";
const DEFAULT_CAPACITY: i64 = 10;
const MAX_CAPACITY: i64 = 10_000;

pub(crate) fn valid_name(field: &str, raw: &str) -> ApiResult<String> {
    validate::single_line(raw, NAME_MAX_CHARS).map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn valid_email(field: &str, raw: &str) -> ApiResult<String> {
    validate::email(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// An empty phone number means "none".
fn valid_phone(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(phone) => validate::single_line(phone, PHONE_MAX_CHARS)
            .map(Some)
            .map_err(|e| ApiError::invalid("phone", e.to_string())),
    }
}

// --- contacts ------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/contacts", tag = "contacts",
    params(
        ("query" = Option<String>, Query, description = "Substring of email or name"),
        ("organisation" = Option<i64>, Query),
        ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query),
    ),
    responses((status = 200, body = ContactPage), (status = 403, body = Problem))
)]
pub async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<ContactPage>> {
    caller.agent()?;
    query.allow_only(&["query", "organisation", "limit", "cursor"])?;
    let filter = ContactFilter {
        organisation: query.parse::<i64>("organisation")?.map(OrganisationId),
        query: query.get("query").map(str::to_string),
    };
    let limit = query.limit()?;
    let after = query.cursor()?.map(ContactId);
    let mut contacts = state
        .store()
        .list_contacts(&filter, after, limit.saturating_add(1))
        .await?;
    let next_cursor = next_page(&mut contacts, limit, |c| c.id.0);
    Ok(Json(ContactPage {
        contacts: contacts.iter().map(ContactView::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContactRequest {
    pub email: String,
    pub name: String,
    pub organisation_id: Option<OrganisationId>,
    pub phone: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/contacts", tag = "contacts",
    request_body = CreateContactRequest,
    responses((status = 201, body = ContactView), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateContactRequest>,
) -> ApiResult<Response> {
    caller.agent()?;
    let new = NewContact {
        email: valid_email("email", &request.email)?,
        name: valid_name("name", &request.name)?,
        organisation: request.organisation_id,
        phone: valid_phone(request.phone)?,
    };
    let contact = state.store().create_contact(new, state.now()).await?;
    Ok(created(
        &format!("/api/v1/contacts/{}", contact.id),
        None,
        ContactView::from(&contact),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem))
)]
pub async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<ContactView>> {
    caller.agent()?;
    let contact = state
        .store()
        .contact(ContactId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("contact {id} not found")))?;
    Ok(Json(ContactView::from(&contact)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContactRequest {
    pub email: Option<String>,
    pub name: Option<String>,
    /// An organisation id, or `null` to detach.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub organisation_id: Option<Option<OrganisationId>>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
}

#[utoipa::path(
    patch, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path)), request_body = UpdateContactRequest,
    responses((status = 200, body = ContactView), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update_contact(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateContactRequest>,
) -> ApiResult<Json<ContactView>> {
    caller.agent()?;
    let patch = ContactPatch {
        email: request
            .email
            .map(|e| valid_email("email", &e))
            .transpose()?,
        name: request.name.map(|n| valid_name("name", &n)).transpose()?,
        organisation: request.organisation_id,
        phone: request.phone.map(valid_phone).transpose()?,
    };
    let contact = state.store().update_contact(ContactId(id), patch).await?;
    Ok(Json(ContactView::from(&contact)))
}

#[utoipa::path(
    delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 409, description = "The contact has tickets", body = Problem))
)]
pub async fn delete_contact(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state.store().delete_contact(ContactId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- organisations -------------------------------------------------------

/// Domains are stored lowercase, without a leading `@`.
fn valid_domains(raw: Vec<String>) -> ApiResult<Vec<String>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, domain)| {
            let domain = domain.trim().trim_start_matches('@').to_lowercase();
            validate::email(&format!("x@{domain}"))
                .map(|_| domain)
                .map_err(|_| ApiError::invalid(format!("domains[{i}]"), "is not a domain name"))
        })
        .collect()
}

fn valid_plan(raw: &str) -> ApiResult<String> {
    validate::single_line(raw, PLAN_MAX_CHARS).map_err(|e| ApiError::invalid("plan", e.to_string()))
}

#[utoipa::path(
    get, path = "/api/v1/organisations", tag = "organisations",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = OrganisationPage))
)]
pub async fn list_organisations(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<OrganisationPage>> {
    caller.agent()?;
    query.allow_only(&["limit", "cursor"])?;
    let limit = query.limit()?;
    let after = query.cursor()?.map(OrganisationId);
    let mut organisations = state
        .store()
        .list_organisations(after, limit.saturating_add(1))
        .await?;
    let next_cursor = next_page(&mut organisations, limit, |o| o.id.0);
    Ok(Json(OrganisationPage {
        organisations: organisations.iter().map(OrganisationView::from).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisationRequest {
    pub name: String,
    /// Default `standard`.
    pub plan: Option<String>,
    /// Email domains whose new contacts join this organisation.
    #[serde(default)]
    pub domains: Vec<String>,
}

#[utoipa::path(
    post, path = "/api/v1/organisations", tag = "organisations",
    request_body = CreateOrganisationRequest,
    responses((status = 201, body = OrganisationView), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create_organisation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateOrganisationRequest>,
) -> ApiResult<Response> {
    caller.agent()?;
    let new = NewOrganisation {
        name: valid_name("name", &request.name)?,
        plan: valid_plan(request.plan.as_deref().unwrap_or(DEFAULT_PLAN))?,
        domains: valid_domains(request.domains)?,
    };
    let organisation = state.store().create_organisation(new, state.now()).await?;
    Ok(created(
        &format!("/api/v1/organisations/{}", organisation.id),
        None,
        OrganisationView::from(&organisation),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/organisations/{id}", tag = "organisations",
    params(("id" = i64, Path)),
    responses((status = 200, body = OrganisationView), (status = 404, body = Problem))
)]
pub async fn get_organisation(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<OrganisationView>> {
    caller.agent()?;
    let organisation = state
        .store()
        .organisation(OrganisationId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("organisation {id} not found")))?;
    Ok(Json(OrganisationView::from(&organisation)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisationRequest {
    pub name: Option<String>,
    pub plan: Option<String>,
    /// Replaces the whole list.
    pub domains: Option<Vec<String>>,
}

#[utoipa::path(
    patch, path = "/api/v1/organisations/{id}", tag = "organisations",
    params(("id" = i64, Path)), request_body = UpdateOrganisationRequest,
    responses((status = 200, body = OrganisationView), (status = 404, body = Problem))
)]
pub async fn update_organisation(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateOrganisationRequest>,
) -> ApiResult<Json<OrganisationView>> {
    caller.agent()?;
    let patch = OrganisationPatch {
        name: request.name.map(|n| valid_name("name", &n)).transpose()?,
        plan: request.plan.map(|p| valid_plan(&p)).transpose()?,
        domains: request.domains.map(valid_domains).transpose()?,
    };
    let plan_changed = patch.plan.is_some();
    let organisation = state
        .store()
        .update_organisation(OrganisationId(id), patch)
        .await?;
    if plan_changed {
        // Policies match on the plan: the open tickets' deadlines follow.
        let job = tierdesk_store::sla::recompute_job(Some(organisation.id), state.now())?;
        state.store().enqueue_job(job, state.now()).await?;
    }
    Ok(Json(OrganisationView::from(&organisation)))
}

#[utoipa::path(
    delete, path = "/api/v1/organisations/{id}", tag = "organisations",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 409, body = Problem))
)]
pub async fn delete_organisation(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.admin()?;
    state
        .store()
        .delete_organisation(OrganisationId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- agents --------------------------------------------------------------

fn valid_agent_tier(tier: Tier) -> ApiResult<Tier> {
    tierdesk_core::people::agent_tier(i64::from(tier.level()))
        .map_err(|message| ApiError::invalid("tier", message))
}

fn valid_capacity(capacity: i64) -> ApiResult<i64> {
    if (0..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(ApiError::invalid(
            "capacity",
            format!("must be between 0 and {MAX_CAPACITY}"),
        ))
    }
}

#[utoipa::path(
    get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentView>), (status = 403, body = Problem))
)]
pub async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<AgentView>>> {
    caller.agent()?;
    let agents = state.store().list_agents().await?;
    Ok(Json(agents.iter().map(AgentView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    pub email: String,
    pub name: String,
    /// Default `agent`.
    pub role: Option<Role>,
    /// 1, 2 or 3.
    pub tier: Tier,
    #[serde(default)]
    pub team_ids: Vec<TeamId>,
    /// Default 10.
    pub capacity: Option<i64>,
    /// Default true.
    pub available: Option<bool>,
    /// At least 8 characters; without one the agent can only use API tokens.
    pub password: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/agents", tag = "agents",
    request_body = CreateAgentRequest,
    responses((status = 201, body = AgentView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn create_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateAgentRequest>,
) -> ApiResult<Response> {
    caller.admin()?;
    let email = valid_email("email", &request.email)?;
    let name = valid_name("name", &request.name)?;
    let tier = valid_agent_tier(request.tier)?;
    let capacity = valid_capacity(request.capacity.unwrap_or(DEFAULT_CAPACITY))?;
    let password_hash = match request.password {
        Some(password) => {
            check_new_password("password", &password)?;
            Some(hash_password_blocking(password).await?)
        }
        None => None,
    };
    let new = NewAgent {
        email,
        name,
        role: request.role.unwrap_or(Role::Agent),
        tier,
        teams: request.team_ids,
        capacity,
        available: request.available.unwrap_or(true),
        password_hash,
    };
    let agent = state.store().create_agent(new, state.now()).await?;
    Ok(created(
        &format!("/api/v1/agents/{}", agent.id),
        None,
        AgentView::from(&agent),
    ))
}

async fn load_agent(state: &AppState, id: AgentId) -> ApiResult<tierdesk_core::Agent> {
    state
        .store()
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent {id} not found")))
}

#[utoipa::path(
    get, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = i64, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = Problem))
)]
pub async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Json<AgentView>> {
    caller.agent()?;
    let agent = load_agent(&state, AgentId(id)).await?;
    Ok(Json(AgentView::from(&agent)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub tier: Option<Tier>,
    /// Replaces the agent's teams.
    pub team_ids: Option<Vec<TeamId>>,
    pub capacity: Option<i64>,
    pub available: Option<bool>,
    /// `false` deactivates: no login, no tokens, no new assignments.
    pub active: Option<bool>,
    /// A new password, at least 8 characters.
    pub password: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = i64, Path)), request_body = UpdateAgentRequest,
    responses((status = 200, body = AgentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update_agent(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiJson(request): ApiJson<UpdateAgentRequest>,
) -> ApiResult<Json<AgentView>> {
    let admin = caller.admin()?;
    let id = AgentId(id);
    // An admin locking themselves out could leave the desk without any admin.
    if admin.id == id && (request.active == Some(false) || request.role == Some(Role::Agent)) {
        return Err(ApiError::invalid(
            if request.active == Some(false) {
                "active"
            } else {
                "role"
            },
            "you cannot deactivate or demote yourself; ask another admin",
        ));
    }
    let patch = AgentPatch {
        email: request
            .email
            .map(|e| valid_email("email", &e))
            .transpose()?,
        name: request.name.map(|n| valid_name("name", &n)).transpose()?,
        role: request.role,
        tier: request.tier.map(valid_agent_tier).transpose()?,
        teams: request.team_ids,
        capacity: request.capacity.map(valid_capacity).transpose()?,
        available: request.available,
        active: request.active,
    };
    let password_hash = match request.password {
        Some(password) => {
            check_new_password("password", &password)?;
            Some(hash_password_blocking(password).await?)
        }
        None => None,
    };
    let agent = if patch == AgentPatch::default() {
        load_agent(&state, id).await?
    } else {
        let wakes_assigner = patch.touches_assignment();
        let agent = state.store().update_agent(id, patch).await?;
        // Role, tier or activity may have changed: cached credentials must not outlive that.
        state.credentials().clear();
        if wakes_assigner {
            crate::assigner::agent_changed(state.store(), id).await;
        }
        agent
    };
    if let Some(hash) = password_hash {
        state.store().set_agent_password(id, &hash).await?;
    }
    Ok(Json(AgentView::from(&agent)))
}

#[utoipa::path(
    get, path = "/api/v1/agents/me", tag = "agents",
    responses((status = 200, body = AgentView), (status = 403, body = Problem))
)]
pub async fn get_me(caller: Caller) -> ApiResult<Json<AgentView>> {
    Ok(Json(AgentView::from(caller.agent()?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Whether new tickets may be routed to you.
    pub available: Option<bool>,
}

#[utoipa::path(
    patch, path = "/api/v1/agents/me", tag = "agents",
    request_body = UpdateMeRequest,
    responses((status = 200, body = AgentView), (status = 403, body = Problem))
)]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UpdateMeRequest>,
) -> ApiResult<Json<AgentView>> {
    let me = caller.agent()?;
    let agent = match request.available {
        Some(available) => {
            let patch = AgentPatch {
                available: Some(available),
                ..AgentPatch::default()
            };
            let agent = state.store().update_agent(me.id, patch).await?;
            state.credentials().clear();
            crate::assigner::agent_changed(state.store(), me.id).await;
            agent
        }
        None => me.clone(),
    };
    Ok(Json(AgentView::from(&agent)))
}
