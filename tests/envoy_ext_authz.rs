//! deploy/examples/envoy-ext-authz, structurally only: no Envoy binary installs from this
//! project's package sources, so the file is parsed and its essential parts checked — the
//! ext_authz filter asks sso-proxy's `/_sso/auth/<path>` (answered with 200, see
//! tests/forward_auth.rs), passes the identity headers on, strips the client's copies first, and
//! leaves sso-proxy's own paths to sso-proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_yaml::Value;

fn envoy_yaml() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/examples/envoy-ext-authz/envoy.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).expect("envoy.yaml parses")
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("a list expected: {v:?}"))
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    seq(list)
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("nothing named {name}"))
}

fn str_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("a string expected: {v:?}"))
}

/// The `exact` patterns of a `ListStringMatcher`.
fn exact_patterns(list: &Value) -> Vec<String> {
    seq(&list["patterns"])
        .iter()
        .filter_map(|p| p["exact"].as_str().map(str::to_owned))
        .collect()
}

fn hcm(listener: &Value) -> &Value {
    let filter = &seq(&listener["filter_chains"])[0]["filters"][0];
    assert_eq!(
        str_of(&filter["name"]),
        "envoy.filters.network.http_connection_manager"
    );
    &filter["typed_config"]
}

const IDENTITY: [&str; 5] = [
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-auth-request-name",
];

#[test]
fn envoy_example_asks_sso_auth_and_passes_the_identity() {
    let config = envoy_yaml();
    let resources = &config["static_resources"];
    let web = hcm(named(&resources["listeners"], "web"));
    let filters = &web["http_filters"];
    let names: Vec<&str> = seq(filters).iter().map(|f| str_of(&f["name"])).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.header_mutation",
            "envoy.filters.http.ext_authz",
            "envoy.filters.http.router"
        ],
        "client identity headers removed, then ext_authz, then routing"
    );

    let authz = &named(filters, "envoy.filters.http.ext_authz")["typed_config"];
    assert_eq!(authz["failure_mode_allow"].as_bool(), Some(false));
    let service = &authz["http_service"];
    assert_eq!(str_of(&service["path_prefix"]), "/_sso/auth");
    let cluster = str_of(&service["server_uri"]["cluster"]);
    let sent = exact_patterns(&service["authorization_request"]["allowed_headers"]);
    for h in ["cookie", "accept", "sec-fetch-mode", "x-requested-with"] {
        assert!(sent.contains(&h.to_owned()), "{h} not sent to /_sso/auth");
    }
    let response = &service["authorization_response"];
    let upstream = exact_patterns(&response["allowed_upstream_headers"]);
    assert_eq!(upstream, IDENTITY, "identity headers passed to the app");
    let client = exact_patterns(&response["allowed_client_headers"]);
    assert!(client.contains(&"set-cookie".to_owned()));
    assert!(client.contains(&"content-type".to_owned()));
    assert_eq!(
        exact_patterns(&response["allowed_client_headers_on_success"]),
        ["set-cookie"]
    );

    // The client's copies of every identity header are removed before ext_authz runs.
    let removed: Vec<&str> = seq(&named(filters, "envoy.filters.http.header_mutation")
        ["typed_config"]["mutations"]["request_mutations"])
    .iter()
    .map(|m| str_of(&m["remove"]))
    .collect();
    for h in IDENTITY.iter().chain(&[
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-preferred-username",
        "x-forwarded-groups",
        "x-forwarded-name",
        "x-forwarded-access-token",
        "x-sso-identity",
        "remote-user",
    ]) {
        assert!(removed.contains(h), "client-sent {h} is not removed");
    }
    assert_eq!(
        str_of(&web["common_http_protocol_options"]["headers_with_underscores_action"]),
        "DROP_HEADER"
    );

    // ext_authz asks sso-proxy itself: /_sso/auth/<original path>, answered with 200.
    assert_eq!(cluster, "sso_proxy");
    let target = named(&resources["clusters"], cluster);
    assert_eq!(
        str_of(
            &target["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["address"]
        ),
        "sso-proxy"
    );
    assert_eq!(
        seq(&resources["listeners"]).len(),
        1,
        "one listener: no adapter in front of /_sso/auth"
    );

    // Routes: sso-proxy's own paths go to sso-proxy without ext_authz, the rest to the app.
    let routes = seq(&web["route_config"]["virtual_hosts"][0]["routes"]);
    let to = |r: &Value| str_of(&r["route"]["cluster"]).to_owned();
    let authz_disabled = |r: &Value| {
        r["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["disabled"].as_bool()
            == Some(true)
    };
    assert_eq!(str_of(&routes[0]["match"]["prefix"]), "/_sso/");
    assert_eq!(to(&routes[0]), "sso_proxy");
    assert!(authz_disabled(&routes[0]));
    let callback = str_of(&routes[1]["match"]["safe_regex"]["regex"]);
    let re = regex::Regex::new(callback).unwrap();
    assert!(re.is_match("/callback_keycloak") && re.is_match("/callback_my-idp_2"));
    assert!(!re.is_match("/callback_x/../app") && !re.is_match("/app/callback_x"));
    assert_eq!(to(&routes[1]), "sso_proxy");
    assert!(authz_disabled(&routes[1]));
    let last = routes.last().unwrap();
    assert_eq!(str_of(&last["match"]["prefix"]), "/");
    assert_eq!(to(last), "app");
    assert!(!authz_disabled(last), "the app is behind ext_authz");

    // A browser without a session goes to the login, with the way back.
    let mapper = &seq(&web["local_reply_config"]["mappers"])[0];
    assert_eq!(mapper["status_code"].as_u64(), Some(302));
    let location = &seq(&mapper["headers_to_add"])[0]["header"];
    assert_eq!(str_of(&location["key"]), "location");
    assert_eq!(str_of(&location["value"]), "/_sso/login?rd=%REQ(:PATH)%");

    for (name, host, port) in [("sso_proxy", "sso-proxy", 4180), ("app", "app", 3000)] {
        let addr = &named(&resources["clusters"], name)["load_assignment"]["endpoints"][0]
            ["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(str_of(&addr["address"]), host);
        assert_eq!(addr["port_value"].as_u64(), Some(port));
    }
}
