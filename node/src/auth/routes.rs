//! Every API route and the role it needs, in one table (issue 13: deny by default). The auth
//! layer looks each request up here by axum's matched route; a route missing from the table is
//! refused to everyone, and a test checks that every route the API registers is listed.

use super::role::Role;
use axum::http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes and metrics: load balancers and Prometheus carry no token.
    Open,
    Needs(Role),
}

use Access::{Needs, Open};
use Role::{Admin, Operator, Viewer};

/// (method, route as registered with axum, access).
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/api/v1/devices", Needs(Viewer)),
    ("GET", "/api/v1/devices/{id}", Needs(Viewer)),
    ("GET", "/api/v1/devices/{id}/params", Needs(Viewer)),
    ("PATCH", "/api/v1/devices/{id}/params", Needs(Operator)),
    ("GET", "/api/v1/devices/{id}/operations", Needs(Viewer)),
    ("POST", "/api/v1/devices/{id}/operations", Needs(Operator)),
    ("GET", "/api/v1/devices/{id}/operations/{op}", Needs(Viewer)),
    (
        "DELETE",
        "/api/v1/devices/{id}/operations/{op}",
        Needs(Operator),
    ),
    (
        "PUT",
        "/api/v1/devices/{id}/connection-request-credentials",
        Needs(Operator),
    ),
    // Writes credentials to every device a query matches: a bulk operation.
    (
        "POST",
        "/api/v1/connection-request-credentials",
        Needs(Admin),
    ),
    ("GET", "/api/v1/query", Needs(Viewer)),
    // Who did what: for those who act on devices.
    ("GET", "/api/v1/audit", Needs(Operator)),
    ("GET", "/api/v1/indexes", Needs(Viewer)),
    ("POST", "/api/v1/indexes", Needs(Admin)),
    ("GET", "/api/v1/cluster", Needs(Viewer)),
    ("POST", "/api/v1/cluster/init", Needs(Admin)),
    ("POST", "/api/v1/cluster/shards", Needs(Admin)),
    ("POST", "/api/v1/cluster/nodes", Needs(Admin)),
    ("DELETE", "/api/v1/cluster/nodes/{id}", Needs(Admin)),
    // Describes the API; holds no data.
    ("GET", "/api/v1/openapi.json", Open),
    ("GET", "/metrics", Open),
    ("GET", "/healthz", Open),
    ("GET", "/readyz", Open),
];

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Access(Access),
    /// A route the table does not list: nobody may use it.
    Unlisted,
}

/// `matched` is axum's matched route, none when no route matched (the 404 fallback, which any
/// valid token may reach). A listed route called with an unlisted method needs a viewer, so
/// that axum's 405 reaches only those who may read.
pub fn required(method: &Method, matched: Option<&str>) -> Required {
    let Some(route) = matched else {
        return Required::Access(Needs(Viewer));
    };
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let mut listed = false;
    for (m, r, access) in ROUTES {
        if *r == route {
            listed = true;
            if *m == method {
                return Required::Access(*access);
            }
        }
    }
    if listed {
        Required::Access(Needs(Viewer))
    } else {
        Required::Unlisted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's routes, read from its source: a route added without a role fails here.
    fn registered_routes() -> Vec<String> {
        let mut routes = Vec::new();
        for source in [
            include_str!("../api.rs"),
            include_str!("../api_indexes.rs"),
            include_str!("../api_credentials.rs"),
        ] {
            for piece in source.split(".route(").skip(1) {
                let Some(start) = piece.find('"') else {
                    continue;
                };
                let rest = &piece[start + 1..];
                if let Some(end) = rest.find('"') {
                    routes.push(rest[..end].to_owned());
                }
            }
        }
        routes
    }

    #[test]
    fn every_registered_route_names_a_role() {
        let routes = registered_routes();
        assert!(routes.len() >= 15, "found only {routes:?}");
        for route in &routes {
            assert!(
                ROUTES.iter().any(|(_, r, _)| r == route),
                "{route} is registered with the API but has no role in auth::routes::ROUTES"
            );
        }
        for (_, route, _) in ROUTES {
            assert!(
                routes.iter().any(|r| r == route),
                "{route} is in the table but not registered"
            );
        }
    }

    #[test]
    fn lookups_deny_by_default() {
        assert_eq!(
            required(&Method::PATCH, Some("/api/v1/devices/{id}/params")),
            Required::Access(Needs(Operator))
        );
        assert_eq!(
            required(&Method::HEAD, Some("/healthz")),
            Required::Access(Open)
        );
        assert_eq!(
            required(&Method::PUT, Some("/api/v1/cluster/init")),
            Required::Access(Needs(Viewer))
        );
        assert_eq!(
            required(&Method::GET, Some("/api/v1/secret-new-route")),
            Required::Unlisted
        );
        assert_eq!(
            required(&Method::GET, None),
            Required::Access(Needs(Viewer))
        );
    }
}
