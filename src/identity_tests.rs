use serde_json::json;

use super::*;

fn names() -> ClaimNames {
    ClaimNames {
        user_id: "sub".into(),
        email: "email".into(),
        name: "name".into(),
        given_name: "given_name".into(),
        family_name: "family_name".into(),
        picture: "picture".into(),
        preferred_username: "preferred_username".into(),
    }
}

fn groups(enabled: bool, case_sensitive: bool) -> GroupsConfig {
    GroupsConfig {
        claim: "groups".into(),
        enabled,
        admins: vec!["Admins".into()],
        case_sensitive,
        prohibit_user_signup_if_not_in_group: true,
    }
}

#[test]
fn maps_nested_claims_and_builds_name() {
    let mut n = names();
    n.email = "profile.mail".into();
    let g = groups(false, true);
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: None,
        client_id: "app",
    };
    let c = json!({"sub": "u1", "profile": {"mail": "a@x"}, "given_name": "Ann", "family_name": "Lee", "groups": ["Admins"]});
    let id = map_claims(&c, &rules).unwrap();
    assert_eq!(id.user, "u1");
    assert_eq!(id.email.as_deref(), Some("a@x"));
    assert_eq!(id.name.as_deref(), Some("Ann Lee"));
    assert_eq!(id.groups, vec!["Admins".to_string()]);
    assert!(!id.admin, "groups.admins acts only when groups.enabled");
}

#[test]
fn admin_from_groups_respects_case_rule() {
    let n = names();
    let c = json!({"sub": "u1", "groups": ["admins"]});
    let g = groups(true, true);
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: None,
        client_id: "app",
    };
    assert!(!map_claims(&c, &rules).unwrap().admin);
    let g = groups(true, false);
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: None,
        client_id: "app",
    };
    assert!(map_claims(&c, &rules).unwrap().admin);
}

#[test]
fn admin_from_keycloak_role() {
    let n = names();
    let g = groups(false, true);
    let c = json!({"sub": "u1", "realm_access": {"roles": ["x"]}, "resource_access": {"app": {"roles": ["boss"]}}});
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: Some("boss"),
        client_id: "app",
    };
    assert!(map_claims(&c, &rules).unwrap().admin);
    let other_client = MappingRules {
        client_id: "another-app",
        ..rules
    };
    assert!(
        !map_claims(&c, &other_client).unwrap().admin,
        "a role of another client never makes an admin"
    );
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: Some("nope"),
        client_id: "app",
    };
    assert!(!map_claims(&c, &rules).unwrap().admin);
}

#[test]
fn missing_user_id_is_refused() {
    let n = names();
    let g = groups(false, true);
    let rules = MappingRules {
        provider: "kc",
        claims: &n,
        groups: &g,
        admin_role: None,
        client_id: "app",
    };
    assert_eq!(
        map_claims(&json!({}), &rules),
        Err(Refusal::MissingUserId("sub".into()))
    );
}

#[test]
fn admission_rules() {
    let g = groups(true, true);
    let known = vec!["ml-team".to_string()];
    let id = Identity {
        user: "u".into(),
        groups: vec!["ml-team".into()],
        ..Identity::default()
    };
    let rules = Admission {
        email_verification: true,
        create_new_users: true,
        groups: &g,
        known_groups: &known,
        hosted_domain: &[],
        email_asserted: false,
    };
    assert_eq!(
        admit(&id, &json!({"email_verified": false}), &rules, false),
        Err(Refusal::EmailNotVerified)
    );
    assert_eq!(
        admit(&id, &json!({"email_verified": true}), &rules, false),
        Ok(())
    );
    let outsider = Identity {
        user: "u".into(),
        groups: vec!["other".into()],
        ..Identity::default()
    };
    assert_eq!(
        admit(&outsider, &json!({"email_verified": true}), &rules, false),
        Err(Refusal::NotInAllowedGroup)
    );
    assert_eq!(
        admit(&outsider, &json!({"email_verified": true}), &rules, true),
        Err(Refusal::NotInAllowedGroup),
        "the group rule applies to known users too"
    );
    let closed = Admission {
        create_new_users: false,
        ..rules
    };
    assert_eq!(
        admit(&id, &json!({"email_verified": true}), &closed, false),
        Err(Refusal::SignupClosed)
    );
}

#[test]
fn only_a_verified_or_asserted_email_can_match_a_known_user() {
    let g = groups(false, true);
    let id = Identity {
        user: "u".into(),
        email: Some("a@x".into()),
        ..Identity::default()
    };
    let oidc = Admission {
        email_verification: false,
        create_new_users: false,
        groups: &g,
        known_groups: &[],
        hosted_domain: &[],
        email_asserted: false,
    };
    assert_eq!(oidc.trusted_email(&id, &json!({})), None);
    assert_eq!(
        oidc.trusted_email(&id, &json!({"email_verified": false})),
        None
    );
    assert_eq!(
        oidc.trusted_email(&id, &json!({"email_verified": "true"})),
        Some("a@x")
    );
    let directory = Admission {
        email_asserted: true,
        ..oidc
    };
    assert_eq!(directory.trusted_email(&id, &json!({})), Some("a@x"));
}
