//! `/api/v1/openapi.json` against the router: the document served by the real binary lists
//! exactly the routes of the router's table, each with the security the auth middleware
//! enforces, and every operation that declares a bearer scope refuses a request without a
//! token. (`.ci/run` also runs schemathesis against the running server.)

mod common;

use std::collections::BTreeSet;

use cairn_api::http::{Access, routes};
use common::sse::SseClient;
use common::{Cairn, TempDir};
use serde_json::{Value, json};

const METHODS: [&str; 6] = ["get", "post", "put", "delete", "patch", "head"];

/// Every (method, path) of the document, with the operation.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[test]
fn the_served_document_matches_the_router_table_and_its_security() {
    let dir = TempDir::new("openapi");
    let config = dir.path().join("cairn.toml");
    // A token is configured so that protected routes really refuse anonymous requests.
    std::fs::write(
        &config,
        format!(
            "[[auth.token]]\nname = \"ops\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
            cairn_api::http::auth::token_sha256_hex("cairn_openapi_test_token")
        ),
    )
    .expect("write config");
    let cairn = Cairn::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("path")],
    );
    let response = cairn.get("/api/v1/openapi.json");
    assert_eq!(
        response.status,
        200,
        "the document is open: {}",
        response.text()
    );
    let document = response.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"]),
        (&json!("http"), &json!("bearer"))
    );

    let table: BTreeSet<(String, String)> = routes(0)
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_string()))
        .collect();
    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    assert_eq!(
        table, documented,
        "the router's table and the OpenAPI document disagree"
    );

    for route in routes(0) {
        let operation = &document["paths"][route.path][route.method.as_str().to_lowercase()];
        let expected = match route.access {
            Access::Role(role) => json!([{"bearer": [role.name()]}]),
            Access::Open | Access::Handler => json!([{}]),
        };
        assert_eq!(
            operation["security"], expected,
            "{} {} declares the wrong security",
            route.method, route.path
        );
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|responses| responses.keys().any(|key| key.starts_with('2'))),
            "{} {} documents no success",
            route.method,
            route.path
        );
        if matches!(route.access, Access::Role(_)) {
            for status in ["401", "403", "429"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{} {} does not document {status}",
                    route.method,
                    route.path
                );
            }
        }
    }

    // Walk the document as a client would: every operation with a bearer scope refuses a
    // request without a token.
    for (method, path, operation) in operations(&document) {
        let needs_token = operation["security"]
            .as_array()
            .is_some_and(|requirements| {
                requirements
                    .iter()
                    .all(|requirement| requirement.get("bearer").is_some())
            });
        let answer = SseClient::open(cairn.http, &method, &path.replace("{id}", "1"), &[]);
        if needs_token {
            assert_eq!(answer.status, 401, "{method} {path} without a token");
        } else {
            assert_ne!(answer.status, 401, "{method} {path} is documented as open");
        }
    }
    cairn.stop();
}
