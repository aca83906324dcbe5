//! The one check of a request path before a callout leaves, shared by HTTP callouts and external
//! services.
//!
//! A path is judged as the server that receives it will read it: percent escapes decoded (so `.%2e`
//! is the `..` a server resolves), every segment looked at after decoding. A path that could reach
//! anything but what it names under the named credential's base URL is refused, not repaired: a dot
//! segment (`.`, `..`, in any mix of escapes), an empty segment (`//`), a backslash (some servers read
//! it as `/`), or a control character (a URL parser silently drops tabs and newlines, which would turn
//! `/a/\t/x` into `//x` after the check).

/// Why herald refuses `path` as a request path, or `None` when it may be sent.
pub fn path_refusal(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("a path must start with `/`");
    }
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    if path.chars().any(char::is_control) || decoded.iter().any(|b| b.is_ascii_control()) {
        return Some(
            "it holds a control character (a tab, a newline, …), which URL parsers drop or servers split on",
        );
    }
    if decoded.contains(&b'\\') {
        return Some("it holds a backslash, which some servers read as `/`");
    }
    // The query, if the path carries one, is not a path.
    let end = decoded.iter().position(|&b| b == b'?').unwrap_or(decoded.len());
    // A trailing `/` is part of some APIs' paths (`/v1/messages/`), and `/` alone is the base URL.
    let after_root = &decoded[1..end];
    if after_root.starts_with(b"/") {
        return Some("it holds an empty segment (`//`)");
    }
    let segments = after_root.strip_suffix(b"/").unwrap_or(after_root);
    if segments.is_empty() {
        return None;
    }
    for segment in segments.split(|&b| b == b'/') {
        match segment {
            b"." | b".." => return Some("it holds a dot segment (`.` or `..`, also percent-encoded)"),
            b"" => return Some("it holds an empty segment (`//`)"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::path_refusal;

    #[test]
    fn dot_segments_are_refused_however_they_are_encoded() {
        for path in [
            "/../steal",
            "/a/./b",
            "/.%2e/steal",
            "/a/.%2e/.%2e/steal",
            "/a/%2e./steal",
            "/a/%2E%2E/steal",
            "/a/%2e/steal",
            "/a%2f..%2fsteal",
            "/a/..",
        ] {
            assert!(path_refusal(path).unwrap().contains("dot segment"), "{path}");
        }
    }

    #[test]
    fn control_characters_backslashes_and_empty_segments_are_refused() {
        for (path, why) in [
            ("/a/\t/x", "control"),
            ("/a/.\n./x", "control"),
            ("/a/%09/x", "control"),
            ("/a/%0d%0aHost:%20x", "control"),
            ("/a\\..\\x", "backslash"),
            ("/a/%5c../x", "backslash"),
            ("/a//x", "empty segment"),
            ("//", "empty segment"),
            ("a/b", "start with"),
        ] {
            let refusal = path_refusal(path).unwrap_or_else(|| panic!("{path:?} passed"));
            assert!(refusal.contains(why), "{path:?}: {refusal}");
        }
    }

    #[test]
    fn ordinary_paths_pass_with_dots_inside_segments_and_escapes_of_other_characters() {
        for path in
            ["/", "/a/", "/app/event", "/v1/sms/x.json", "/a/..b/c", "/users/a%20b", "/v1/messages?x=../y"]
        {
            assert_eq!(path_refusal(path), None, "{path}");
        }
    }
}
