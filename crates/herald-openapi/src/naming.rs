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

/// Apex's reserved words (case-insensitive), plus `type`, which External Services also prefixes with
/// `z0` (`reference/salesforce.md`). A property named like one of them gets `z0` in front of its API name.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "abstract", "activate", "and", "any", "array", "as", "asc", "autonomous", "begin", "bigdecimal", "blob",
    "boolean", "break", "bulk", "by", "byte", "case", "cast", "catch", "char", "class", "collect", "commit",
    "const", "continue", "currency", "date", "datetime", "decimal", "default", "delete", "desc", "do",
    "double", "else", "end", "enum", "exception", "exit", "export", "extends", "false", "final", "finally",
    "float", "for", "from", "global", "goto", "group", "having", "hint", "if", "implements", "import", "in",
    "inner", "insert", "instanceof", "int", "integer", "interface", "into", "join", "like", "limit", "list",
    "long", "loop", "map", "merge", "new", "not", "null", "nulls", "number", "object", "of", "on", "or",
    "outer", "override", "package", "parallel", "pragma", "private", "protected", "public", "retrieve",
    "return", "rollback", "select", "set", "short", "sobject", "sort", "static", "string", "super", "switch",
    "synchronized", "system", "testmethod", "then", "this", "throw", "time", "transaction", "trigger", "true",
    "try", "type", "undelete", "update", "upsert", "using", "virtual", "void", "webservice", "when", "where",
    "while",
];

/// Whether `word` is reserved in Apex (case-insensitive), so that an identifier named so needs `z0`.
pub fn is_reserved_word(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// The API name of a property or parameter: the JSON name escaped as [`sanitize_identifier`] does, with
/// `z0` in front of a reserved word (`type` -> `z0type`, `from` -> `z0from`).
pub fn api_name(json_name: &str) -> String {
    let escaped = sanitize_identifier(json_name);
    if is_reserved_word(&escaped) { format!("z0{escaped}") } else { escaped }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_words_get_z0() {
        assert_eq!(api_name("type"), "z0type");
        assert_eq!(api_name("Type"), "z0Type");
        assert_eq!(api_name("from"), "z0from");
        assert_eq!(api_name("destination"), "destination");
        assert_eq!(api_name("catalog_id"), "catalogx5fid");
        assert!(!is_reserved_word("types"));
    }

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
