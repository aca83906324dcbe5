//! Salesforce's names for generated types: `ExternalService__<Registration>_<Schema>`, with every character
//! that cannot stand in an identifier written as `x` + the hex of its UTF-8 bytes.

/// Escapes a schema or registration name the way External Services does: `single-message-request` ->
/// `singlex2dmessagex2drequest`, `_` -> `x5f` (underscore separates the hierarchy), a leading digit `5` ->
/// `x35`.
pub fn sanitize_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (position, character) in name.chars().enumerate() {
        let keep = character.is_ascii_alphanumeric() && !(position == 0 && character.is_ascii_digit());
        if keep {
            out.push(character);
        } else {
            let mut buffer = [0u8; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("x{byte:02x}"));
            }
        }
    }
    out
}

/// `ExternalService__KixieService_Send_SMS_IN_body`: the registration name is kept as the admin typed it
/// (Salesforce requires it to be a valid API name already); each later part is escaped.
pub fn registration_type_name(registration: &str, parts: &[&str]) -> String {
    let mut name = format!("ExternalService__{registration}");
    for part in parts {
        name.push('_');
        name.push_str(part);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_external_services() {
        assert_eq!(sanitize_identifier("single-message-request"), "singlex2dmessagex2drequest");
        assert_eq!(sanitize_identifier("a.b"), "ax2eb");
        assert_eq!(sanitize_identifier("a_b"), "ax5fb");
        assert_eq!(sanitize_identifier("5xx"), "x35xx");
        assert_eq!(sanitize_identifier("SmsRequest"), "SmsRequest");
        assert_eq!(sanitize_identifier("é"), "xc3xa9");
    }

    #[test]
    fn builds_registration_names() {
        assert_eq!(
            registration_type_name("CPaaSSMS", &["SmsRequest"]),
            "ExternalService__CPaaSSMS_SmsRequest"
        );
    }
}
