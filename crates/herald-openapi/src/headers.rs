//! Headers that no project file may set.
//!
//! A callout's framing and routing belong to herald and its HTTP client: `Host` would let a header
//! send the request to another virtual host than the named credential's, `Content-Length` and
//! `Transfer-Encoding` would let it disagree with the body actually sent (request smuggling through a
//! proxy), and the hop-by-hop headers of RFC 9110 §7.6.1 (`Connection`, `Keep-Alive`, `Proxy-*`, `TE`,
//! `Trailer`, `Upgrade`) describe one connection, not the request. The project loader refuses them in
//! named credentials and the importer refuses them as OpenAPI header parameters, so a flow (whose
//! header inputs are the operation's header parameters) can never set them either.

/// Why herald refuses `name` as a header set by a project file, or `None` when it may be set.
/// Names compare without regard to case.
pub fn header_refusal(name: &str) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Some(
            "it is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only, no spaces or colons)",
        );
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "host" => Some("herald sets Host from the named credential's URL"),
        "content-length" | "transfer-encoding" => {
            Some("the HTTP client sets the body's framing from the body it sends")
        }
        "connection" | "keep-alive" | "te" | "trailer" | "upgrade" => {
            Some("it is a hop-by-hop header that only the HTTP client may set")
        }
        _ if lower.starts_with("proxy-") => {
            Some("it is a hop-by-hop header that only the HTTP client may set")
        }
        _ => None,
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_routing_and_hop_by_hop_headers_are_refused_in_any_case() {
        for name in [
            "Host",
            "host",
            "Content-Length",
            "TRANSFER-ENCODING",
            "Connection",
            "Keep-Alive",
            "Proxy-Authorization",
            "proxy-connection",
            "TE",
            "Trailer",
            "Upgrade",
        ] {
            assert!(header_refusal(name).is_some(), "{name} must be refused");
        }
    }

    #[test]
    fn ordinary_headers_are_allowed_and_malformed_names_are_not() {
        for name in ["Authorization", "X-Api-Key", "Accept", "Idempotency-Key", "Hostname"] {
            assert_eq!(header_refusal(name), None, "{name}");
        }
        for name in ["", "X Key", "X-Key:", "X-Key\r\nHost", "Ключ"] {
            assert!(header_refusal(name).unwrap().contains("not an HTTP header name"), "{name:?}");
        }
    }
}
