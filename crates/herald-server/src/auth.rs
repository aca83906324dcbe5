//! Who is calling, and may they call this route. The scope of every API route is declared once, in
//! the route table of `lib.rs`; the router runs [`Caller`] on each of those routes before the handler
//! and its other extractors, so no handler can skip the check and no body is read (or refused as
//! malformed or too large) for a client that has not shown a valid token with the route's scope.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use herald_codes as codes;
use herald_engine::Engine;
use herald_project::ApiScope;
use herald_store::UserRow;

/// The API scope a route needs, set on the request by the route table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteScope(pub ApiScope);

/// The user behind the request's bearer token, who holds the route's API scope.
///
/// As an extractor it answers 401 `INVALID_SESSION_ID` without a valid token and 403
/// `INSUFFICIENT_ACCESS` without the scope (naming the permission sets that grant it). The first
/// extraction keeps the result in the request, so a handler that takes a `Caller` after the router's
/// check costs no second lookup.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserRow,
}

impl FromRequestParts<Engine> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Engine) -> Result<Caller, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        // Only a route mounted outside the route table gets here without a scope: refuse it rather
        // than serve it open.
        let Some(&RouteScope(scope)) = parts.extensions.get::<RouteScope>() else {
            return Err(ApiError::server_error(&format_args!(
                "{} {} asks for the caller but declares no API scope; add it to the route table",
                parts.method,
                parts.uri.path()
            )));
        };
        let caller = Caller { user: authorize(engine, &parts.headers, scope).await? };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The user behind the bearer token of `headers`, if it holds `scope`.
async fn authorize(
    engine: &Engine,
    headers: &axum::http::HeaderMap,
    scope: ApiScope,
) -> Result<UserRow, ApiError> {
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::new(codes::api::INVALID_SESSION_ID,
            "this route needs `Authorization: Bearer <token>`; create a token with `herald token create USER`".into(),
        ));
    };
    let Some(user) = engine.authenticate(token).await? else {
        return Err(ApiError::new(
            codes::api::INVALID_SESSION_ID,
            "the bearer token is not valid (unknown, revoked, or its user was removed)".into(),
        ));
    };
    require_scope(engine, &user, scope)?;
    Ok(user)
}

/// Refuses (403 `INSUFFICIENT_ACCESS`, naming what grants it) a user whose permission sets do not
/// grant `scope`: the one check the API and the console share.
pub(crate) fn require_scope(engine: &Engine, user: &UserRow, scope: ApiScope) -> Result<(), ApiError> {
    if !engine.scopes(user).contains(&scope) {
        return Err(ApiError::new(
            codes::api::INSUFFICIENT_ACCESS,
            missing_scope(&user.name, scope, &engine.permission_sets_granting(scope)),
        ));
    }
    Ok(())
}

/// The token of `Authorization: Bearer <token>` (the scheme in either case Salesforce clients send).
fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// The 403 message: who lacks which scope, and what to assign (or add) to grant it.
fn missing_scope(user: &str, scope: ApiScope, granting: &[String]) -> String {
    let fix = if granting.is_empty() {
        format!("add `api_scopes: [{}]` to a permission set and assign it", scope.name())
    } else {
        format!("assign permission set {}", granting.join(" or "))
    };
    format!("user {user} lacks the API scope {}; {fix}", scope.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_403_message_names_every_permission_set_that_grants_the_scope() {
        let message =
            missing_scope("webform", ApiScope::ManageFlows, &["Admin".into(), "Flow_Manager".into()]);
        assert_eq!(
            message,
            "user webform lacks the API scope manage_flows; assign permission set Admin or Flow_Manager"
        );
    }

    #[test]
    fn the_403_message_says_how_to_grant_a_scope_no_permission_set_grants() {
        let message = missing_scope("webform", ApiScope::ManageCredentials, &[]);
        assert_eq!(
            message,
            "user webform lacks the API scope manage_credentials; add `api_scopes: [manage_credentials]` to a permission set and assign it"
        );
    }

    #[test]
    fn only_a_bearer_authorization_yields_a_token() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            bearer_token(&headers).map(String::from)
        };
        assert_eq!(with("Bearer hrld_abc").as_deref(), Some("hrld_abc"));
        assert_eq!(with("bearer  hrld_abc ").as_deref(), Some("hrld_abc"));
        assert_eq!(with("Basic aGk6dGhlcmU="), None);
        assert_eq!(bearer_token(&axum::http::HeaderMap::new()), None);
    }
}
