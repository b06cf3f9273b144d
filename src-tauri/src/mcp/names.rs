//! The names the model sees for MCP tools: `SERVER__tool`, within the providers' limits
//! (`^[a-zA-Z0-9_-]{1,64}$`, the stricter of OpenAI's and Anthropic's rules).

/// Longest tool name every provider accepts.
pub const MAX_LEN: usize = 64;
/// Between the server's name and the tool's.
pub const SEPARATOR: &str = "__";
/// Hex digits of the hash that keeps cut or clashing names apart.
const HASH_DIGITS: usize = 8;

/// Characters outside `[a-zA-Z0-9_-]` become `_`; an empty result is `_`.
pub fn sanitize(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "_".to_string()
    } else {
        clean
    }
}

/// `SERVER__tool`, sanitized; a name over 64 characters keeps its start and ends in a hash of
/// the original pair, so two long names that share a start still differ.
pub fn qualified(server: &str, tool: &str) -> String {
    let name = format!("{}{SEPARATOR}{}", sanitize(server), sanitize(tool));
    if name.len() <= MAX_LEN {
        name
    } else {
        hashed(&name, server, tool)
    }
}

/// The fallback when `qualified` clashes with a name already taken (two tools that differ only
/// in characters sanitizing removes): the start of the name and a hash of the original pair.
pub fn disambiguated(server: &str, tool: &str) -> String {
    let name = format!("{}{SEPARATOR}{}", sanitize(server), sanitize(tool));
    hashed(&name, server, tool)
}

fn hashed(name: &str, server: &str, tool: &str) -> String {
    let keep = MAX_LEN - HASH_DIGITS - 1;
    // Sanitized names are ASCII, so byte positions are character positions.
    let start = &name[..name.len().min(keep)];
    format!(
        "{start}_{:0width$x}",
        fnv1a(server, tool) as u32,
        width = HASH_DIGITS
    )
}

/// FNV-1a over `server`, a NUL, and `tool`: stable across runs and builds, so a session's
/// recorded tool names still match when it is resumed.
fn fnv1a(server: &str, tool: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in server.bytes().chain([0]).chain(tool.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(qualified("github", "create_issue"), "github__create_issue");
        assert_eq!(qualified("everything", "get-sum"), "everything__get-sum");
    }

    #[test]
    fn odd_characters_are_replaced() {
        assert_eq!(qualified("my server.v2", "tool/λ"), "my_server_v2__tool__");
        assert_eq!(qualified("", ""), "____");
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash() {
        let server = "s".repeat(40);
        let a = qualified(&server, &"t".repeat(40));
        let b = qualified(&server, &format!("{}x", "t".repeat(40)));
        assert_eq!(a.len(), MAX_LEN);
        assert!(valid(&a) && valid(&b));
        assert_ne!(a, b);
        assert_eq!(a, qualified(&server, &"t".repeat(40)));
        // Fixed forever: recorded sessions depend on it.
        assert_eq!(fnv1a("a", "b"), 0xe5d2_9919_0426_66b2);
    }

    #[test]
    fn clashes_get_a_distinct_name() {
        let first = qualified("s", "a.b");
        let second = qualified("s", "a_b");
        assert_eq!(first, second);
        let other = disambiguated("s", "a_b");
        assert_ne!(other, first);
        assert!(valid(&other));
    }

    #[test]
    fn every_name_is_valid() {
        for (server, tool) in [
            ("a", "b"),
            ("ünïcödé", "名前"),
            ("x".repeat(100).as_str(), "y"),
            ("s", "t".repeat(200).as_str()),
            (" ", " "),
        ] {
            assert!(valid(&qualified(server, tool)), "{server} {tool}");
            assert!(valid(&disambiguated(server, tool)), "{server} {tool}");
        }
    }
}
