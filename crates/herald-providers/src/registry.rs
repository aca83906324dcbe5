//! The one list of providers herald knows. The project loader, the engine, the server and the
//! sandbox all find a provider here, by name or by host; none of them names a provider itself.

use crate::connector::Connector;
use crate::{eightbyeight, generic, kixie, twilio, vonage};

/// Every connector, in the order their names are listed to users. `generic` is last: it is what a
/// service is when no other connector serves its host.
static CONNECTORS: &[&dyn Connector] = &[
    &kixie::Kixie,
    &eightbyeight::Sms,
    &eightbyeight::ChatApps,
    &twilio::Twilio,
    &vonage::Vonage,
    &generic::Generic,
];

/// A provider: a handle on its connector, cheap to copy and compared by name.
#[derive(Clone, Copy)]
pub struct Provider(&'static dyn Connector);

impl Provider {
    /// Every provider herald knows, `generic` last.
    pub fn all() -> impl Iterator<Item = Provider> {
        CONNECTORS.iter().map(|connector| Provider(*connector))
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::all().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The provider named `name`; for tests and tools that name one on purpose.
    ///
    /// # Panics
    /// When no provider has that name.
    pub fn named(name: &str) -> Provider {
        Provider::from_name(name).unwrap_or_else(|| panic!("no provider named {name}"))
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        Provider::all().map(|p| p.name())
    }

    /// Any other HTTP API: a 2xx is a success, and nothing more is promised.
    pub fn generic() -> Provider {
        Provider(&generic::Generic)
    }

    pub fn is_generic(self) -> bool {
        self == Provider::generic()
    }

    /// The provider behind a host, for services that do not name one.
    pub fn detect(host: &str) -> Provider {
        let host = host.to_ascii_lowercase();
        Provider::all().find(|p| p.serves_host(&host)).unwrap_or_else(Provider::generic)
    }

    /// The providers whose webhooks herald reads.
    pub fn with_webhooks() -> impl Iterator<Item = Provider> {
        Provider::all().filter(|p| p.webhook_auth().is_some())
    }

    pub fn connector(self) -> &'static dyn Connector {
        self.0
    }

    /// The OpenAPI files this provider publishes, as herald ships them (see [`crate::specs`]).
    pub fn published_specs(self) -> impl Iterator<Item = &'static crate::PublishedSpec> {
        crate::specs::published(self.0.name())
    }
}

impl std::ops::Deref for Provider {
    type Target = dyn Connector;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Provider) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Provider {}

impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provider({})", self.0.name())
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_a_unique_name_and_is_found_by_it() {
        let names: Vec<&str> = Provider::names().collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in names {
            assert_eq!(Provider::from_name(name).map(|p| p.name()), Some(name));
            assert_eq!(Provider::from_name(&name.to_uppercase()).map(|p| p.name()), Some(name));
        }
        assert_eq!(Provider::from_name("nope"), None);
        assert_eq!(Provider::all().last(), Some(Provider::generic()));
    }

    #[test]
    fn a_host_no_connector_serves_is_generic() {
        assert!(Provider::detect("example.com").is_generic());
        assert!(Provider::detect("").is_generic());
    }

    #[test]
    fn only_the_generic_provider_serves_no_host_and_reads_no_webhook() {
        assert!(Provider::generic().webhook_auth().is_none());
        assert!(Provider::all().filter(|p| !p.is_generic()).all(|p| p.webhook_auth().is_some()));
    }
}
