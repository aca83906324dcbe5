//! The OpenAPI files the providers publish, shipped inside herald (`specs/` of this crate, sources in
//! its README). The project loader holds an imported spec against its provider's published one and
//! warns where they disagree, since a request that passes herald's check against a drifted copy would
//! still be refused by the provider. One list, here, so a provider's spec is found by its name.

/// One published spec of a provider.
#[derive(Clone, Copy, Debug)]
pub struct PublishedSpec {
    /// The provider's name in the registry (`8x8-chatapps`).
    pub provider: &'static str,
    /// The file's name as the provider publishes it (`business_messaging_api.json`), for messages.
    pub file: &'static str,
    /// Where it comes from, for people reading a warning.
    pub source: &'static str,
    pub text: &'static str,
}

/// Every published spec herald ships.
pub static PUBLISHED_SPECS: &[PublishedSpec] = &[
    PublishedSpec {
        provider: "8x8-sms",
        file: "sms_api.json",
        source: "8x8's SMS API reference (developer.8x8.com)",
        text: include_str!("../specs/8x8/sms_api.json"),
    },
    PublishedSpec {
        provider: "8x8-chatapps",
        file: "business_messaging_api.json",
        source: "8x8's Chat Apps API reference (developer.8x8.com)",
        text: include_str!("../specs/8x8/business_messaging_api.json"),
    },
    PublishedSpec {
        provider: "twilio",
        file: "twilio_api_v2010.json (CreateMessage)",
        source: "github.com/twilio/twilio-oai",
        text: include_str!("../specs/twilio/twilio_api_v2010.CreateMessage.json"),
    },
    PublishedSpec {
        provider: "vonage-sms",
        file: "sms.json",
        source: "Vonage's OpenAPI definitions (github.com/Vonage/api-specification)",
        text: include_str!("../specs/vonage/sms.json"),
    },
];

/// The published specs of the provider named `provider` (none for Kixie and generic services).
pub fn published(provider: &str) -> impl Iterator<Item = &'static PublishedSpec> + '_ {
    PUBLISHED_SPECS.iter().filter(move |spec| spec.provider.eq_ignore_ascii_case(provider))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;

    #[test]
    fn every_published_spec_belongs_to_a_known_provider_and_is_json() {
        for spec in PUBLISHED_SPECS {
            assert!(Provider::from_name(spec.provider).is_some(), "{} names no provider", spec.provider);
            let parsed: serde_json::Value = serde_json::from_str(spec.text).expect(spec.file);
            assert!(parsed.get("paths").is_some(), "{} has paths", spec.file);
        }
        assert_eq!(published("8x8-chatapps").count(), 1);
        assert_eq!(published("kixie").count(), 0, "Kixie publishes no OpenAPI file");
    }
}
