//! Signing in and out, portal invitations and API tokens.

use super::created;
use crate::AppState;
use crate::auth::{
    self, Caller, Credential, Identity, MaybeCaller, check_new_password, clear_session_cookie,
    hash_password_blocking, new_api_token, origin_allowed, random_secret, session_cookie,
    token_hash, verify_password_blocking, wants_secure_cookie,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientIp, PathId, QueryParams};
use crate::views::{
    AgentView, ApiTokenView, ContactView, CreatedApiToken, InviteView, PrincipalView, SessionView,
    rfc3339,
};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tierdesk_core::validate;
use tierdesk_core::{AgentId, ContactId};
use tierdesk_store::{NewApiToken, Principal, Session};
use utoipa::ToSchema;

const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const TOKEN_NAME_MAX_CHARS: usize = 100;
/// `td_` plus eight characters: enough to recognise a token in a list.
const TOKEN_PREFIX_CHARS: usize = 11;

/// `{email, password}`. Deliberately not `Debug`, so it never reaches a log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Agents,
    Customers,
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionView),
        (status = 401, body = Problem), (status = 403, description = "Cross-site request", body = Problem),
        (status = 429, body = Problem),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    sign_in(&state, ip, &headers, request, Audience::Agents).await
}

#[utoipa::path(
    post, path = "/api/v1/portal/login", tag = "portal", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionView),
        (status = 401, body = Problem), (status = 429, body = Problem),
    )
)]
pub async fn portal_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    sign_in(&state, ip, &headers, request, Audience::Customers).await
}

async fn sign_in(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    request: LoginRequest,
    audience: Audience,
) -> ApiResult<Response> {
    let config = state.config();
    if !origin_allowed(headers, config.public_url.as_deref()) {
        return Err(ApiError::csrf_failed(
            "sign-in from another site is not allowed",
        ));
    }
    let email = request.email.trim().to_lowercase();
    state.login_limiter().check(&email, ip)?;
    if request.password.chars().count() > auth::MAX_PASSWORD_CHARS {
        return Err(ApiError::bad_credentials());
    }
    let store = state.store();
    // Every branch runs one Argon2 verification, so timing does not tell
    // unknown accounts from wrong passwords.
    let (principal, view) = match audience {
        Audience::Agents => {
            let agent = store.agent_by_email(&email).await?;
            let hash = match &agent {
                Some(agent) => store.agent_password_hash(agent.id).await?,
                None => None,
            };
            let verified = verify_password_blocking(request.password, hash).await?;
            match agent {
                Some(agent) if verified && agent.active => (
                    Principal::Agent(agent.id),
                    PrincipalView::Agent(AgentView::from(&agent)),
                ),
                _ => return Err(ApiError::bad_credentials()),
            }
        }
        Audience::Customers => {
            let contact = store.contact_by_email(&email).await?;
            let hash = match &contact {
                Some(contact) => store.contact_password_hash(contact.id).await?,
                None => None,
            };
            let verified = verify_password_blocking(request.password, hash).await?;
            match contact {
                Some(contact) if verified => (
                    Principal::Customer(contact.id),
                    PrincipalView::Customer(ContactView::from(&contact)),
                ),
                _ => return Err(ApiError::bad_credentials()),
            }
        }
    };
    start_session(state, headers, principal, view).await
}

/// Opens a session for someone already authenticated: stores it (hashed)
/// and answers with its cookie and CSRF token.
pub(crate) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    principal: Principal,
    view: PrincipalView,
) -> ApiResult<Response> {
    let config = state.config();
    let store = state.store();
    let cookie_value = random_secret();
    let csrf_token = random_secret();
    let ttl_secs = config.session_ttl_hours.clamp(1, 24 * 366) * 3600;
    let now = state.now();
    store
        .create_session(Session {
            token_hash: token_hash(&cookie_value),
            principal,
            csrf_token: csrf_token.clone(),
            created_at: now,
            expires_at: now.plus_millis(ttl_secs * 1000),
        })
        .await?;
    let secure = wants_secure_cookie(config.public_url.as_deref(), headers);
    let mut response = Json(SessionView {
        principal: view,
        csrf_token: Some(csrf_token),
    })
    .into_response();
    set_cookie(
        &mut response,
        &session_cookie(&cookie_value, ttl_secs, secure),
    );
    Ok(response)
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out; the cookie is cleared"), (status = 403, body = Problem))
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Signing out a live session needs its CSRF token, or any site could do it.
    caller.require_csrf(&Method::POST, &headers)?;
    if let Some(Caller {
        credential: Credential::Session { token_hash, .. },
        ..
    }) = &caller.0
    {
        state.store().delete_session(token_hash).await?;
        state.credentials().clear();
    }
    let secure = wants_secure_cookie(state.config().public_url.as_deref(), &headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, &clear_session_cookie(secure));
    Ok(response)
}

#[utoipa::path(
    get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = SessionView), (status = 401, body = Problem))
)]
pub async fn current(caller: MaybeCaller) -> ApiResult<Json<SessionView>> {
    let caller = caller.0.ok_or_else(ApiError::unauthenticated)?;
    let principal = match &caller.identity {
        Identity::Agent(agent) => PrincipalView::Agent(AgentView::from(agent)),
        Identity::Customer(contact) => PrincipalView::Customer(ContactView::from(contact)),
    };
    let csrf_token = match caller.credential {
        Credential::Session { csrf_token, .. } => Some(csrf_token),
        Credential::Token => None,
    };
    Ok(Json(SessionView {
        principal,
        csrf_token,
    }))
}

// --- portal access ----------------------------------------------------------

#[utoipa::path(
    post, path = "/api/v1/contacts/{id}/invite", tag = "portal",
    params(("id" = i64, Path)),
    responses(
        (status = 201, description = "A one-time invitation, valid 7 days; the token is shown only now", body = InviteView),
        (status = 403, body = Problem), (status = 404, body = Problem),
    )
)]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<Response> {
    caller.agent()?;
    let contact = state
        .store()
        .contact(ContactId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("contact {id} not found")))?;
    let secret = random_secret();
    let expires_at = state.now().plus_millis(INVITE_TTL_MS);
    state
        .store()
        .create_invite(contact.id, &token_hash(&secret), expires_at)
        .await?;
    Ok(created(
        &format!("/api/v1/contacts/{}", contact.id),
        None,
        InviteView {
            invite_token: secret,
            expires_at: rfc3339(expires_at),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    pub token: String,
    /// At least 8 characters.
    pub password: String,
}

#[utoipa::path(
    post, path = "/api/v1/portal/accept-invite", tag = "portal", security(()),
    request_body = AcceptInviteRequest,
    responses(
        (status = 200, description = "The contact can now sign in to the portal", body = ContactView),
        (status = 404, description = "Unknown, used or expired invitation", body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn accept_invite(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AcceptInviteRequest>,
) -> ApiResult<Json<ContactView>> {
    check_new_password("password", &request.password)?;
    let password_hash = hash_password_blocking(request.password).await?;
    let contact = state
        .store()
        .redeem_invite(
            &token_hash(request.token.trim()),
            &password_hash,
            state.now(),
        )
        .await?;
    Ok(Json(ContactView::from(&contact)))
}

#[utoipa::path(
    delete, path = "/api/v1/contacts/{id}/portal-access", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 204, description = "Password removed; portal sessions end"), (status = 404, body = Problem))
)]
pub async fn revoke_portal_access(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    caller.agent()?;
    state
        .store()
        .set_contact_password(ContactId(id), None)
        .await?;
    state.credentials().clear();
    Ok(StatusCode::NO_CONTENT)
}

// --- API tokens ---------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. "monitoring bridge".
    pub name: String,
    /// Admins only: create the token for another agent.
    pub agent_id: Option<AgentId>,
}

/// Whose tokens a request is about: the caller's own, or (admins) any agent's.
fn token_owner(caller: &Caller, requested: Option<AgentId>) -> ApiResult<AgentId> {
    let me = caller.agent()?;
    match requested {
        Some(other) if other != me.id => Ok(caller.admin().map(|_| other)?),
        _ => Ok(me.id),
    }
}

#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    responses((status = 201, description = "The secret is in `token`, shown only now", body = CreatedApiToken), (status = 403, body = Problem))
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<Response> {
    let owner = token_owner(&caller, request.agent_id)?;
    let name = validate::single_line(&request.name, TOKEN_NAME_MAX_CHARS)
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    if state
        .store()
        .agent(owner)
        .await?
        .is_none_or(|agent| !agent.active)
    {
        return Err(ApiError::invalid(
            "agent_id",
            format!("no active agent with id {owner}"),
        ));
    }
    let (secret, hash) = new_api_token();
    let token = state
        .store()
        .create_api_token(
            NewApiToken {
                agent: owner,
                name,
                prefix: secret.chars().take(TOKEN_PREFIX_CHARS).collect(),
                token_hash: hash,
            },
            state.now(),
        )
        .await?;
    Ok(created(
        &format!("/api/v1/tokens/{}", token.id),
        None,
        CreatedApiToken {
            info: ApiTokenView::from(&token),
            token: secret,
        },
    ))
}

#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    params(("agent_id" = Option<i64>, Query, description = "Admins: another agent's tokens")),
    responses((status = 200, body = Vec<ApiTokenView>), (status = 403, body = Problem))
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<Vec<ApiTokenView>>> {
    query.allow_only(&["agent_id"])?;
    let owner = token_owner(&caller, query.parse::<i64>("agent_id")?.map(AgentId))?;
    let tokens = state.store().list_api_tokens(owner).await?;
    Ok(Json(tokens.iter().map(ApiTokenView::from).collect()))
}

#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path), ("agent_id" = Option<i64>, Query, description = "Admins: another agent's token")),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem))
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    query: QueryParams,
) -> ApiResult<StatusCode> {
    query.allow_only(&["agent_id"])?;
    let owner = token_owner(&caller, query.parse::<i64>("agent_id")?.map(AgentId))?;
    state.store().revoke_api_token(owner, id).await?;
    state.credentials().clear();
    Ok(StatusCode::NO_CONTENT)
}
