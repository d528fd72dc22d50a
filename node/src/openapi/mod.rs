//! The REST API's OpenAPI 3.1 document (issue 13), served at `GET /api/v1/openapi.json` and
//! generated with utoipa: request bodies and the main answers are the handlers' own types, and
//! a test checks that the document lists exactly the routes of the route → role table
//! (`auth::routes::ROUTES`), so neither can drift from the other. Each operation names the
//! role it needs.

mod paths;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error the API answers: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs (`bad_request`, `not_found`, `unauthorized`, …).
    pub code: String,
    /// For people.
    pub message: String,
}

/// A parameter value to set: text, a number or a boolean.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum ParamValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// An operation to queue: its `kind` and that kind's fields (`url`, `file_type`, `path`,
/// `params`, …); `ttl` (e.g. `1h`) bounds how long it waits for the device.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OperationRequest {
    #[schema(
        example = "reboot",
        pattern = "^(set_params|reboot|factory_reset|download|upload|add_object|delete_object|refresh|schedule_inform|get_rpc_methods|get_attributes|operate)$"
    )]
    kind: String,
    ttl: Option<String>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`radar token new`) or a JWT of the configured OpenID Connect provider",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Radar API",
        description = "Digital twins of TR-069 and TR-369 devices: read them, write them (queued until the device connects), query the fleet, audit who did what, and run the cluster."
    ),
    modifiers(&Security),
    security(("bearer" = [])),
    paths(
        paths::list_devices,
        paths::device_summary,
        paths::get_params,
        paths::patch_params,
        paths::list_operations,
        paths::post_operation,
        paths::get_operation,
        paths::cancel_operation,
        paths::put_device_credentials,
        paths::put_fleet_credentials,
        paths::fleet_query,
        paths::audit,
        paths::list_indexes,
        paths::add_index,
        paths::cluster,
        paths::cluster_init,
        paths::cluster_add_shard,
        paths::cluster_add_node,
        paths::cluster_remove_node,
        paths::openapi_json,
        paths::metrics,
        paths::healthz,
        paths::readyz,
    ),
    components(schemas(ErrorBody, ErrorDetail, ParamValue, OperationRequest))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::routes::{Access, ROUTES};

    /// The document and the route table list the same routes, with the same role.
    #[test]
    fn the_document_lists_every_route_of_the_role_table() {
        let doc = ApiDoc::openapi();
        let doc = serde_json::to_value(&doc).unwrap();
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                documented.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
        assert_eq!(documented.len(), ROUTES.len(), "{documented:#?}");
        for (method, route, access) in ROUTES {
            let (_, _, operation) = documented
                .iter()
                .find(|(m, p, _)| m == method && p == route)
                .unwrap_or_else(|| panic!("{method} {route} is not in the OpenAPI document"));
            let description = operation["description"].as_str().unwrap_or_default();
            match access {
                Access::Open => assert_eq!(
                    operation["security"],
                    serde_json::json!([{}]),
                    "{method} {route} is open"
                ),
                Access::Needs(role) => assert!(
                    description.contains(&format!("Needs the {role} role")),
                    "{method} {route}: {description:?}"
                ),
            }
        }
    }
}
