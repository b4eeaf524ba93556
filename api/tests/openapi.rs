//! `/api/v1/openapi.json` against the router: the document served by the real binary lists
//! exactly the routes of the router's table, each with the security the auth middleware
//! enforces, and every operation that declares a bearer scope (or the Splunk HEC token scheme)
//! refuses a request without a token. (`.ci/run` also runs schemathesis against the running
//! server.)

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
    let splunk = &document["components"]["securitySchemes"]["splunk"];
    assert_eq!(
        (&splunk["type"], &splunk["in"], &splunk["name"]),
        (&json!("apiKey"), &json!("header"), &json!("Authorization"))
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
        let security = &operation["security"];
        match route.access {
            Access::Role(role) => assert_eq!(
                security,
                &json!([{"bearer": [role.name()]}]),
                "{} {} declares the wrong security",
                route.method,
                route.path
            ),
            Access::Open => assert_eq!(
                security,
                &json!([{}]),
                "{} {} is open",
                route.method,
                route.path
            ),
            // The handler's own scheme (Splunk HEC tokens), or none (HEC health): never a
            // bearer token, which the middleware does not ask of these routes.
            Access::Handler => assert!(
                [json!([{}]), json!([{"splunk": []}])].contains(security),
                "{} {} checks its own tokens but declares {security}",
                route.method,
                route.path
            ),
        }
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

    // Walk the document as a client would: every operation with a bearer scope (or the Splunk
    // HEC scheme) refuses a request without a token.
    for (method, path, operation) in operations(&document) {
        let needs = |scheme: &str| {
            operation["security"]
                .as_array()
                .is_some_and(|requirements| {
                    requirements
                        .iter()
                        .all(|requirement| requirement.get(scheme).is_some())
                })
        };
        let (needs_bearer, needs_splunk) = (needs("bearer"), needs("splunk"));
        let concrete = path
            .replace("{id}", "1")
            .replace("{name}", "soc")
            .replace("{index}", "logs");
        let answer = SseClient::open(cairn.http, &method, &concrete, &[]);
        if needs_bearer {
            assert_eq!(answer.status, 401, "{method} {path} without a token");
        } else if needs_splunk {
            assert_eq!(answer.status, 401, "{method} {path} without a token");
            assert!(
                answer
                    .header("www-authenticate")
                    .is_none_or(|challenge| !challenge.starts_with("Bearer")),
                "{method} {path} asks for a bearer token, not a Splunk one"
            );
        } else {
            assert_ne!(answer.status, 401, "{method} {path} is documented as open");
        }
    }
    cairn.stop();
}
