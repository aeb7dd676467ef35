//! The OpenAPI 3.1 document, generated from the handlers' annotations: every route added
//! through `routes!` in [`crate::routes`] appears in it, so it cannot fall behind.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "siyu API",
        description = "Private-domain customer operations: CDP, SCRM and marketing automation. \
            Authenticate with `Authorization: Bearer <API token>` (programs) or the `siyu_session` \
            cookie from `POST /api/v1/auth/login` (the console). Errors are always \
            `{\"error\":{\"code\",\"message\",\"details\"}}`. Lists are paginated with `cursor` and \
            `limit` and answer `{\"items\":[…],\"next_cursor\":…}`."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "signing in and out"),
        (name = "units", description = "the unit tree: group, brands, subsidiaries, stores"),
        (name = "staff", description = "staff members who use the console"),
        (name = "roles", description = "roles and permissions"),
        (name = "api-tokens", description = "bearer tokens for programs"),
        (name = "audit", description = "the audit log of security-relevant actions"),
        (name = "sources", description = "sources of events and their write keys"),
        (name = "customers", description = "customer profiles: identities, traits, timeline, notes, consent, data-subject requests"),
        (name = "orders", description = "orders and after-sales (refunds, returns, exchanges)"),
        (name = "imports", description = "CSV imports of customers and orders, with progress"),
        (name = "reports", description = "the operations dashboard's figures"),
        (name = "tracking", description = "the Segment-compatible tracking API (HTTP Basic: the write key as user name)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "an API token from `siyu token create` or POST /api/v1/api-tokens",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "a source's write key as the user name, empty password",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
    }
}

#[cfg(test)]
mod tests {
    /// The console's typed API client is generated from `web/openapi.json`; this keeps that
    /// snapshot equal to the document the server serves, so the console cannot drift from
    /// the API. `SIYU_UPDATE_OPENAPI=1 cargo test -p siyu-server openapi` rewrites it.
    #[test]
    fn the_console_snapshot_is_the_served_document() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/openapi.json");
        let served = serde_json::to_string_pretty(&crate::openapi_document()).unwrap() + "\n";
        if std::env::var_os("SIYU_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &served).unwrap();
        }
        let snapshot = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            snapshot == served,
            "web/openapi.json is not the API's current OpenAPI document; refresh it with \
             `SIYU_UPDATE_OPENAPI=1 cargo test -p siyu-server openapi` and rebuild the console"
        );
    }
}
