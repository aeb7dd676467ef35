//! The OpenAPI 3.1 document, generated from the handlers' annotations: every route added
//! through `routes!` in [`crate::routes`] appears in it, so it cannot fall behind.
//!
//! [`complete`] then adds what the shared machinery does for every handler alike, so that
//! no annotation has to repeat it (and none can forget it): the error responses of the
//! extractors in [`crate::extract`] and of the router's layers, the bounds of the
//! parameters they check, and the frozen operation ids of `operation-ids.txt`.

use std::collections::BTreeMap;

use siyu_domain::page::MAX_LIMIT;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr};
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
        (name = "connectors", description = "channel connectors (WeCom): accounts, health, callbacks"),
        (name = "acquisition", description = "channel accounts and channel codes (渠道活码)"),
        (name = "engagement", description = "what the brand says to customers: message templates"),
        (name = "jobs", description = "background jobs: their state, progress and last error; cancel and retry"),
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

/// The operation ids, frozen: `METHOD PATH operationId` per line. utoipa names an
/// operation after its handler function, and clients generated from the document (and
/// their users' code) name it by that id, so renaming a Rust function must not rename an
/// operation. An operation listed here keeps its id whatever its handler is called; a
/// test requires every operation to be listed (`SIYU_UPDATE_OPENAPI=1` adds new ones and
/// never changes a line already there).
const OPERATION_IDS: &str = include_str!("../operation-ids.txt");

/// Error responses that depend on what one handler does with its input rather than on
/// the shared machinery, found by reading the handler (or by the fuzzer, `tests/fuzz/`):
/// operation id, status, why. [`complete`] adds them where the annotation lacks them.
const HANDLER_ERRORS: &[(&str, u16, &str)] = &[
    (
        "list_orders",
        404,
        "no such customer or unit (`customer_id`, `unit_id`)",
    ),
    ("create_tag_group", 404, "no such unit (`unit_id`)"),
    ("create_tag", 404, "no such tag group (`group_id`)"),
    ("update_source", 409, "a source with this name exists"),
];

/// Completes the document assembled from the handlers' annotations: operation ids from
/// [`OPERATION_IDS`], the error responses every operation can give, and parameter
/// bounds. A response an annotation documents is kept (its description says more); one
/// with an empty description gets the common one.
pub fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let frozen = frozen_operation_ids();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            if let Some(id) = frozen.get(&(method, path.as_str())) {
                operation.operation_id = Some((*id).to_owned());
            }
            add_error_responses(method, path, operation);
            bound_parameters(operation);
        }
    }
    doc
}

/// The (method, path) → id pairs of [`OPERATION_IDS`].
fn frozen_operation_ids() -> BTreeMap<(&'static str, &'static str), &'static str> {
    OPERATION_IDS
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(((words.next()?, words.next()?), words.next()?))
        })
        .collect()
}

/// Each operation of a path with its method as written in `operation-ids.txt`.
fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// How an operation authenticates, from its `security`.
#[derive(PartialEq)]
enum Caller {
    /// The document's default (bearer token or session cookie): the `Auth` extractor.
    Signed,
    /// A source's write key: the tracking API.
    WriteKey,
    /// `security(())`: anyone (signing in).
    Anyone,
}

fn caller(operation: &Operation) -> Caller {
    match &operation.security {
        None => Caller::Signed,
        Some(requirements) if requirements.contains(&SecurityRequirement::default()) => {
            Caller::Anyone
        }
        Some(_) => Caller::WriteKey,
    }
}

/// Reads that the `Auth` extractor alone guards: they check no permission, and as reads
/// they are not refused to cookies from other sites; so no 403.
const OPEN_TO_EVERY_CALLER: &[(&str, &str)] = &[("GET", "/api/v1/me")];

fn add_error_responses(method: &str, path: &str, operation: &mut Operation) {
    let caller = caller(operation);
    let has = |at: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == at)
    };
    let (in_path, in_query) = (has(ParameterIn::Path), has(ParameterIn::Query));
    let body = operation.request_body.as_ref();
    // `ApiJson` bodies; the tracking API reads its bodies itself (gzip, write key inside)
    let json_body = caller != Caller::WriteKey
        && body.is_some_and(|b| b.content.contains_key("application/json"));
    let mut errors: Vec<(u16, &str)> = Vec::new();
    if json_body {
        errors.push((400, "the body is not valid JSON (`invalid_json`)"));
    }
    match caller {
        Caller::Signed => {
            errors.push((401, "not signed in: no valid `Authorization: Bearer` token or session cookie (`unauthenticated`)"));
            if !OPEN_TO_EVERY_CALLER.contains(&(method, path)) {
                errors.push((403, "your role lacks the permission, what you name is outside your data scope, or a change signed by the session cookie came from another site (`forbidden`)"));
            }
        }
        Caller::WriteKey => errors.push((401, "bad or missing write key (`invalid_write_key`)")),
        Caller::Anyone => {}
    }
    if in_path {
        errors.push((404, "nothing with that id in your tenant (`not_found`)"));
    }
    if body.is_some() {
        // the router's body limit (`body_limit_bytes`), or the endpoint's own
        errors.push((
            413,
            "the body is larger than the server takes (`payload_too_large`)",
        ));
    }
    if json_body {
        errors.push((
            415,
            "the body is not sent as `Content-Type: application/json` (`unsupported_media_type`)",
        ));
    }
    if in_path || in_query || json_body {
        errors.push((422, "a parameter or a field of the body is not valid; `details.fields` names each (`validation_failed`)"));
    }
    let id = operation.operation_id.as_deref().unwrap_or_default();
    errors.extend(
        HANDLER_ERRORS
            .iter()
            .filter(|(op, ..)| *op == id)
            .map(|(_, status, why)| (*status, *why)),
    );
    let responses = &mut operation.responses.responses;
    for (status, description) in errors {
        match responses.get_mut(&status.to_string()) {
            Some(RefOr::T(documented)) if documented.description.is_empty() => {
                documented.description = description.to_owned();
            }
            Some(_) => {}
            None => {
                responses.insert(status.to_string(), error_response(description));
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// The bounds the server checks, in the parameters' schemas: `limit` is
/// `PageRequest`'s 1 to [`MAX_LIMIT`]; `days` (the Pareto report's window) 0 to 3650.
fn bound_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let bounds = match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Query, "limit") => (1, MAX_LIMIT as usize),
            (ParameterIn::Query, "days") => (0, 3650),
            _ => continue,
        };
        if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
            schema.minimum = Some(utoipa::Number::UInt(bounds.0));
            schema.maximum = Some(utoipa::Number::UInt(bounds.1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation is in `operation-ids.txt`, every line there is an operation, and
    /// no two share an id. `SIYU_UPDATE_OPENAPI=1` adds new operations (with the id utoipa
    /// derives) and drops those gone, and never changes the id of one already listed.
    #[test]
    fn operation_ids_are_frozen() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/operation-ids.txt");
        let mut derived = crate::routes::api_router().split_for_parts().1;
        let mut operations = BTreeMap::new();
        for (path, item) in derived.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                let id = operation
                    .operation_id
                    .clone()
                    .expect("utoipa names every operation");
                operations.insert((method.to_owned(), path.clone()), id);
            }
        }
        let frozen: BTreeMap<(String, String), String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let key = (words.next()?.to_owned(), words.next()?.to_owned());
                Some((key, words.next()?.to_owned()))
            })
            .collect();
        if std::env::var_os("SIYU_UPDATE_OPENAPI").is_some() {
            let lines: String = operations
                .iter()
                .map(|(key, derived)| {
                    let id = frozen.get(key).unwrap_or(derived);
                    format!("{} {} {id}\n", key.0, key.1)
                })
                .collect();
            if lines != std::fs::read_to_string(path).unwrap_or_default() {
                std::fs::write(path, lines).unwrap();
                panic!("operation-ids.txt was updated; run the tests again (it is compiled in)");
            }
        }
        let new: Vec<_> = operations
            .keys()
            .filter(|k| !frozen.contains_key(*k))
            .collect();
        let gone: Vec<_> = frozen
            .keys()
            .filter(|k| !operations.contains_key(*k))
            .collect();
        assert!(
            new.is_empty() && gone.is_empty(),
            "operation-ids.txt does not list the API's operations (new: {new:?}; gone: {gone:?}); \
             `SIYU_UPDATE_OPENAPI=1 cargo test -p siyu-server openapi` updates it"
        );
        let mut seen = std::collections::BTreeSet::new();
        for id in frozen.values() {
            assert!(seen.insert(id), "two operations share the id {id}");
        }
        // and the served document uses them
        let served = crate::openapi_document();
        for (path, item) in served.paths.paths.clone().iter_mut() {
            for (method, operation) in operations_mut(item) {
                let key = (method.to_owned(), path.clone());
                assert_eq!(operation.operation_id.as_ref(), frozen.get(&key), "{key:?}");
            }
        }
    }

    #[test]
    fn handler_errors_name_operations_that_exist() {
        let served = crate::openapi_document();
        let ids: Vec<String> = served
            .paths
            .paths
            .values()
            .cloned()
            .flat_map(|mut item| {
                operations_mut(&mut item)
                    .into_iter()
                    .filter_map(|(_, op)| op.operation_id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        for (id, status, _) in HANDLER_ERRORS {
            assert!(
                ids.iter().any(|known| known == id),
                "{id} ({status}) is no operation"
            );
        }
    }

    /// Spot checks of what [`complete`] adds, against what the extractors do.
    #[test]
    fn every_operation_lists_the_common_errors() {
        let doc = serde_json::to_value(crate::openapi_document()).unwrap();
        let statuses = |method: &str, path: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}"))
                .keys()
                .cloned()
                .collect()
        };
        // a JSON body, a path id, signed in
        assert_eq!(
            statuses("patch", "/api/v1/tags/{id}"),
            [
                "200", "400", "401", "403", "404", "409", "413", "415", "422"
            ]
        );
        // a read with paging: no body, so no 400, 413 or 415
        assert_eq!(
            statuses("get", "/api/v1/units"),
            ["200", "401", "403", "422"]
        );
        // no permission and no parameters
        assert_eq!(statuses("get", "/api/v1/me"), ["200", "401"]);
        // signing in: anyone may, and it throttles
        assert_eq!(
            statuses("post", "/api/v1/auth/login"),
            ["200", "400", "401", "409", "413", "415", "422", "429"]
        );
        // the tracking API reads its own bodies
        assert_eq!(
            statuses("post", "/v1/batch"),
            ["200", "400", "401", "413", "503"]
        );
        // WeCom's callbacks: signed, not signed in; their XML body is read by the handler
        assert_eq!(
            statuses("post", "/callbacks/wecom/{id}"),
            ["200", "400", "401", "404", "413", "422"]
        );
        assert_eq!(
            statuses("get", "/callbacks/wecom/{id}"),
            ["200", "400", "401", "404", "422"]
        );
        let limit = &doc["paths"]["/api/v1/units"]["get"]["parameters"][1];
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], MAX_LIMIT);
        let error = &doc["paths"]["/api/v1/units"]["get"]["responses"]["422"];
        assert_eq!(
            error["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }

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
