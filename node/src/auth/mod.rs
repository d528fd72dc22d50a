//! API authentication and roles (issue 13). Every request carries `Authorization: Bearer
//! <token>`; the layer finds the token's role and the role its route needs
//! ([`routes::ROUTES`]), and answers 401 (no or unknown token) or 403 (a role too weak) with a
//! JSON error before any handler runs. `/healthz`, `/readyz` and `/metrics` stay open.
//!
//! - [`role`]: viewer < operator < admin.
//! - [`routes`]: the route → role table, deny by default.
//! - [`tokens`]: token hashes, their files, and the bootstrap admin token.
//! - [`rate`]: the request rate per token.
//! - [`oidc`]: JWTs of an OpenID Connect provider, their subject and role.

pub mod oidc;
pub mod rate;
pub mod role;
pub mod routes;
pub mod tokens;

use crate::api::ApiError;
use crate::metrics::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use radar_core::ErrorCode;
use role::Role;
use routes::{Access, Required};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use tokens::{Principal, TokenEntry, TokenError, TokenStore};

/// On a request one node proxies to another: the caller the first node authenticated.
pub const ON_BEHALF_OF_HEADER: &str = "x-radar-on-behalf-of";
/// ... and that caller's role.
pub const ROLE_HEADER: &str = "x-radar-role";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Tokens by hash: `{ id = "noc", role = "viewer", sha256 = "…" }` (`radar token new`
    /// prints a token and its entry).
    pub tokens: Vec<TokenEntry>,
    /// A file of more entries (a JSON array of the same), e.g. mounted from a Secret.
    pub tokens_file: Option<PathBuf>,
    /// `/metrics` needs a viewer's token too.
    pub metrics_need_token: bool,
    /// Requests per second each token may make (0: no limit); beyond it, 429.
    pub requests_per_second: u32,
    /// Requests a token may make at once before its rate applies.
    pub burst: u32,
    /// The first admin token, from `RADAR_BOOTSTRAP_TOKEN` only (never a file in clear).
    #[serde(skip)]
    pub bootstrap_token: Option<String>,
    /// Also accept JWTs of this OpenID Connect provider.
    pub oidc: Option<oidc::OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            tokens_file: None,
            metrics_need_token: false,
            requests_per_second: 1000,
            burst: 2000,
            bootstrap_token: None,
            oidc: None,
        }
    }
}

/// What the API's auth layer checks against.
pub struct ApiAuth {
    tokens: TokenStore,
    /// The cluster's layout, whose secret authenticates requests proxied between nodes.
    cluster: Option<Arc<crate::cluster::meta::MetaGroup>>,
    metrics_need_token: bool,
    rate: rate::RateLimiter,
    rate_per_second: u32,
    metrics: Arc<Metrics>,
    oidc: Option<oidc::OidcVerifier>,
}

impl ApiAuth {
    /// Loads every token source, making the bootstrap admin token first if needed. Returns the
    /// token generated now (to be shown once), if one was.
    pub fn open(
        config: &AuthConfig,
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, Option<String>), TokenError> {
        let generated = tokens::ensure_bootstrap(data_dir, config.bootstrap_token.as_deref())?;
        let mut entries = tokens::read_file(&data_dir.join(tokens::DATA_DIR_FILE))?;
        entries.extend(config.tokens.iter().cloned());
        if let Some(file) = &config.tokens_file {
            let more = tokens::read_file(file)?;
            if more.is_empty() && !file.exists() {
                return Err(TokenError::File {
                    path: file.clone(),
                    message: "no such file".into(),
                });
            }
            entries.extend(more);
        }
        let tokens = TokenStore::new(entries)?;
        tracing::info!(tokens = tokens.len(), "api tokens loaded");
        let oidc = config
            .oidc
            .clone()
            .map(oidc::OidcVerifier::new)
            .transpose()
            .map_err(|message| TokenError::File {
                path: PathBuf::from("[auth.oidc] ca_file"),
                message,
            })?;
        Ok((
            Self {
                tokens,
                cluster: None,
                metrics_need_token: config.metrics_need_token,
                rate: rate::RateLimiter::new(config.requests_per_second, config.burst),
                rate_per_second: config.requests_per_second,
                metrics,
                oidc,
            },
            generated,
        ))
    }

    /// Accepts requests other nodes of `cluster` proxy on their callers' behalf.
    pub fn with_cluster(mut self, cluster: Option<Arc<crate::cluster::meta::MetaGroup>>) -> Self {
        self.cluster = cluster;
        self
    }

    /// The caller a proxied request names, when it carries the cluster's secret. The secret is
    /// compared by hash, so timing says nothing about it; without an initialized cluster there
    /// is none.
    fn proxied_caller(&self, request: &Request, token: &str) -> Option<Principal> {
        let layout = self.cluster.as_ref()?.current();
        if layout.cluster_secret.is_empty()
            || !request
                .headers()
                .contains_key(crate::api_routing::FORWARDED_HEADER)
            || tokens::sha256_hex(&layout.cluster_secret) != tokens::sha256_hex(token)
        {
            return None;
        }
        let header = |name: &str| request.headers().get(name)?.to_str().ok();
        Some(Principal {
            id: header(ON_BEHALF_OF_HEADER)?.to_owned(),
            role: header(ROLE_HEADER)?.parse().ok()?,
        })
    }

    fn denied(&self, reason: &str, code: ErrorCode, message: String) -> Response {
        self.metrics
            .api_auth_denied
            .with_label_values(&[reason])
            .inc();
        ApiError::new(code, message).into_response()
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The axum middleware: authenticate, authorize, and hand the handler the [`Principal`].
pub async fn require_role(
    State(auth): State<Arc<ApiAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let needed = match routes::required(request.method(), route.as_deref()) {
        Required::Access(Access::Open)
            if !(auth.metrics_need_token && route.as_deref() == Some("/metrics")) =>
        {
            return next.run(request).await
        }
        Required::Access(Access::Open) => Role::Viewer,
        Required::Access(Access::Needs(role)) => role,
        Required::Unlisted => {
            return auth.denied(
                "unlisted",
                ErrorCode::Forbidden,
                "this route names no role, so nobody may use it".into(),
            )
        }
    };
    // Owned: a JWT's check may wait on the provider, and the request is not held across it.
    let Some(token) = bearer(&request).map(str::to_owned) else {
        return auth.denied(
            "missing",
            ErrorCode::Unauthorized,
            "missing bearer token: send Authorization: Bearer <token> (the CLI reads RADAR_TOKEN or --token)".into(),
        );
    };
    let (mut principal, proxied) = match auth.tokens.verify(&token) {
        Some(principal) => (Some(principal.clone()), false),
        None => (auth.proxied_caller(&request, &token), true),
    };
    if let (None, Some(verifier)) = (&principal, &auth.oidc) {
        if oidc::looks_like_jwt(&token) {
            match verifier.verify(&token).await {
                Ok(caller) => principal = Some(caller),
                Err(refusal @ oidc::JwtRefusal::NoRole(_)) => {
                    return auth.denied("role", ErrorCode::Forbidden, refusal.to_string())
                }
                Err(refusal) => {
                    tracing::debug!(error = %refusal, "jwt refused");
                    return auth.denied("jwt", ErrorCode::Unauthorized, refusal.to_string());
                }
            }
        }
    }
    let Some(principal) = principal else {
        return auth.denied(
            "unknown",
            ErrorCode::Unauthorized,
            "unknown or revoked token".into(),
        );
    };
    if !principal.role.allows(needed) {
        return auth.denied(
            "role",
            ErrorCode::Forbidden,
            format!(
                "token {:?} has the role {}; this needs {needed}",
                principal.id, principal.role
            ),
        );
    }
    if let Err(wait) = auth.rate.check(&principal.id, std::time::Instant::now()) {
        auth.metrics
            .api_limit_hits
            .with_label_values(&["rate"])
            .inc();
        let mut response = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "token {:?} is over its {} requests per second; retry shortly",
                principal.id, auth.rate_per_second
            ),
        )
        .into_response();
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    if proxied {
        // The proxying node's client, for the audit log.
        let client = request
            .headers()
            .get(crate::audit::CLIENT_ADDR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(client) = client {
            request
                .extensions_mut()
                .insert(crate::audit::ProxiedFrom(client));
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
