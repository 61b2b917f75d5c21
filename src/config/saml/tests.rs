//! Unit tests for the SAML connection loader.

use serde_yaml::Mapping;

use super::*;

fn sample(fields: &[(&str, Kind)]) -> Value {
    let mut m = Mapping::new();
    for (name, kind) in fields {
        let v = match kind {
            Kind::Bool => Value::from(true),
            Kind::List => Value::from(vec!["x"]),
            Kind::Map(inner) => sample(inner),
            _ => Value::from("x"),
        };
        m.insert(Value::from(*name), v);
    }
    Value::Mapping(m)
}

#[test]
fn saml_schema_and_raw_struct_agree() {
    let full = sample(SAML_PROVIDER);
    let raw: RawSamlProvider = serde_yaml::from_value(full.clone()).unwrap();
    assert_eq!(serde_yaml::to_value(&raw).unwrap(), full);
}

#[test]
fn presets_supply_their_attribute_names() {
    let ms = claims(SamlPreset::MicrosoftAd, RawClaims::default());
    assert!(ms.email.ends_with("/claims/emailaddress"));
    assert_eq!(ms.user_id, NAMEID_CLAIM);
    let google = claims(SamlPreset::Google, RawClaims::default());
    assert_eq!(google.email, NAMEID_CLAIM);
    assert_eq!(
        groups(SamlPreset::Jumpcloud, RawGroups::default()).claim,
        "memberOf"
    );
    let custom = claims(
        SamlPreset::Duo,
        RawClaims {
            email: Some("mail".into()),
            ..RawClaims::default()
        },
    );
    assert_eq!(custom.email, "mail");
    assert_eq!(custom.given_name, "FirstName");
}
