//! A search hit's snippet, cut from the log itself: the full-text table keeps no copy of the
//! text, so the best chunk's lines are read again (a chunk is at most 64 KiB of text) and the
//! matched words are found in them. The snippet is plain text; the matches come as character
//! ranges, never as markers inside the text.

use std::path::Path;

use super::text::{fold, pieces, words};
use crate::history::reader::open_log;
use crate::history::record::{Line, parse_line};

/// Characters of context before the first match.
const BEFORE: usize = 60;
/// Longest snippet, in characters.
const LENGTH: usize = 220;

/// Where a chunk's text came from (a row of `chunks`).
#[derive(Clone, Copy, Debug)]
pub struct ChunkSpot {
    /// The session's title row, not the conversation.
    pub title: bool,
    pub first_msg: u64,
    pub msg_at_start: u64,
    pub start: u64,
    pub stop: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<[usize; 2]>,
    /// The message the text comes from.
    pub message: u64,
}

/// The query's terms as the tokenizer sees them: every word of every query word, folded;
/// the very last one matches as a prefix.
struct Terms {
    whole: Vec<String>,
    prefix: Option<String>,
}

impl Terms {
    fn new(query: &[String]) -> Terms {
        let mut all: Vec<String> = query
            .iter()
            .flat_map(|word| {
                words(word)
                    .map(|(a, b)| fold(&word[a..b]))
                    .collect::<Vec<_>>()
            })
            .collect();
        let prefix = all.pop();
        Terms { whole: all, prefix }
    }

    /// Which term `word` matches (an index), if any.
    fn matches(&self, word: &str) -> Option<usize> {
        let folded = if word.is_ascii() {
            word.to_ascii_lowercase()
        } else {
            fold(word)
        };
        if let Some(i) = self.whole.iter().position(|t| *t == folded) {
            return Some(i);
        }
        match &self.prefix {
            Some(prefix) if folded.starts_with(prefix.as_str()) => Some(self.whole.len()),
            Some(_) | None => None,
        }
    }
}

/// The snippet of a hit on `spot` in the log at `path`, for the query `words`. Falls back to
/// the start of the chunk when the words cannot be found again (the log changed since).
pub fn cut_snippet(path: &Path, spot: &ChunkSpot, title: &str, query: &[String]) -> Snippet {
    let terms = Terms::new(query);
    if spot.title {
        return around_matches(title, &terms, 0).unwrap_or_else(|| Snippet {
            text: clip(title, LENGTH),
            highlights: Vec::new(),
            message: 0,
        });
    }
    let texts = chunk_pieces(path, spot).unwrap_or_default();
    let mut best: Option<(usize, Snippet)> = None;
    for (message, text) in &texts {
        if let Some(snippet) = around_matches(text, &terms, *message) {
            let found = snippet.highlights.len();
            if best.as_ref().is_none_or(|(n, _)| found > *n) {
                best = Some((found, snippet));
            }
        }
    }
    match best {
        Some((_, snippet)) => snippet,
        None => {
            let (message, text) = texts
                .into_iter()
                .next()
                .unwrap_or((spot.first_msg, String::new()));
            Snippet {
                text: clip(text.trim_start(), LENGTH),
                highlights: Vec::new(),
                message,
            }
        }
    }
}

/// The searchable pieces of the chunk's lines, with their message numbers.
fn chunk_pieces(path: &Path, spot: &ChunkSpot) -> Option<Vec<(u64, String)>> {
    let mut source = open_log(path).ok()?;
    let mut out = Vec::new();
    let mut messages = spot.msg_at_start;
    source
        .lines_from(spot.start, true, |start, line| {
            if start >= spot.stop {
                return false;
            }
            if let Line::Record(record) = parse_line(line) {
                let is_message = matches!(*record, crate::history::Record::Message { .. });
                for piece in pieces(&record, messages, None) {
                    out.push((piece.message, piece.text));
                }
                if is_message {
                    messages += 1;
                }
            }
            true
        })
        .ok()?;
    Some(out)
}

/// A window of `text` around its first match, with every match in the window highlighted.
fn around_matches(text: &str, terms: &Terms, message: u64) -> Option<Snippet> {
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    for (a, b) in words(text) {
        if let Some(term) = terms.matches(&text[a..b]) {
            found.push((a, b, term));
        }
    }
    let first = found.first()?;
    // Start a little before the first match, on a char boundary.
    let mut start = first.0;
    let mut back = 0;
    while start > 0 && back < BEFORE {
        start -= 1;
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        back += 1;
    }
    let end = text[start..]
        .char_indices()
        .nth(LENGTH)
        .map_or(text.len(), |(i, _)| start + i);
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < text.len() { "…" } else { "" };
    let body = &text[start..end];
    let snippet: String = format!("{lead}{body}{tail}").replace(['\n', '\r', '\t'], " ");
    let offset = lead.chars().count();
    let highlights = found
        .iter()
        .filter(|(a, b, _)| *a >= start && *b <= end)
        .map(|(a, b, _)| {
            let from = offset + text[start..*a].chars().count();
            [from, from + text[*a..*b].chars().count()]
        })
        .collect();
    Some(Snippet {
        text: snippet,
        highlights,
        message,
    })
}

/// At most `max` characters of `text`, on one line, with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out.replace(['\n', '\r', '\t'], " ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_ranges_in_plain_text() {
        let terms = Terms::new(&["zebra".to_string(), "qua".to_string()]);
        let text = "[x] before the Zebra and the quagga, then more";
        let snippet = around_matches(text, &terms, 3).unwrap();
        assert_eq!(snippet.text, text);
        let marked: Vec<String> = snippet
            .highlights
            .iter()
            .map(|[a, b]| snippet.text.chars().skip(*a).take(b - a).collect())
            .collect();
        assert_eq!(marked, ["Zebra", "quagga"]);
        assert_eq!(snippet.message, 3);
        // Far into a long text: the window starts shortly before the match, with an ellipsis.
        let long = format!(
            "{}naïve café here{}",
            "word ".repeat(200),
            " tail".repeat(200)
        );
        let terms = Terms::new(&["cafe".to_string()]);
        let snippet = around_matches(&long, &terms, 0).unwrap();
        assert!(snippet.text.starts_with('…') && snippet.text.ends_with('…'));
        let [a, b] = snippet.highlights[0];
        let marked: String = snippet.text.chars().skip(a).take(b - a).collect();
        assert_eq!(marked, "café");
    }
}
