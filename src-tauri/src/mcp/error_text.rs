//! Error texts for people: rmcp's errors carry Rust type paths and nest their causes.

/// The innermost cause of an error: the part that says what went wrong, without the layers of
/// transport type names around it.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    without_type_names(&cause.to_string())
}

/// Drops `[some::rust::Type<…>]` parts that rmcp puts in its error texts.
pub fn without_type_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let inside = &rest[open + 1..close];
        if !inside.contains("::") {
            out.push_str(&rest[open..=close]);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn type_names_are_dropped_from_error_texts() {
        assert_eq!(
            super::without_type_names(
                "Send message error Transport [rmcp::transport::Worker<a::B<c::D>>] error: refused [x]"
            ),
            "Send message error Transport error: refused [x]"
        );
    }
}
