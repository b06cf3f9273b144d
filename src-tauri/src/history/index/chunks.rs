//! Cutting a session's searchable text into chunks of at most 64 KiB, each one full-text row
//! that knows the messages and bytes it came from. The last chunk stays open between passes
//! (its text is kept in the saved state) and is rewritten as the log grows, so a live session
//! does not leave one small row per look.

use serde::{Deserialize, Serialize};

use super::text::{CHUNK_BYTES, Piece, cut};

/// A chunk being filled.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpenChunk {
    /// Its full-text row, once written.
    pub row: Option<i64>,
    pub first_msg: u64,
    pub last_msg: u64,
    /// The number the first message at or after `start` has.
    pub msg_at_start: u64,
    /// Byte offset of the first line that gave it text, and the end of the last one.
    pub start: u64,
    pub stop: u64,
    pub text: String,
    /// Changed since it was last written.
    #[serde(skip)]
    pub dirty: bool,
}

impl OpenChunk {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// Where one line of the log sits: its bytes, and the number of the next message at its start.
#[derive(Clone, Copy, Debug)]
pub struct LineAt {
    pub start: u64,
    pub stop: u64,
    pub messages_before: u64,
}

/// Adds `piece` (from the line at `line`) to `open`; every chunk that fills up is handed to
/// `sealed` (and `open` starts over). A piece longer than a chunk spreads over several.
pub fn add(open: &mut OpenChunk, line: LineAt, piece: &Piece, sealed: &mut impl FnMut(OpenChunk)) {
    let mut rest = piece.text.as_str();
    while !rest.is_empty() {
        let room = CHUNK_BYTES.saturating_sub(open.text.len() + usize::from(!open.is_empty()));
        if room < rest.len().min(CHUNK_BYTES / 2) && !open.is_empty() {
            // Does not fit well: close this chunk and start the next with the piece.
            let full = std::mem::take(open);
            sealed(full);
            continue;
        }
        let part = cut(rest, room.max(4));
        let part = if part.is_empty() { cut(rest, 4) } else { part };
        if open.is_empty() {
            open.first_msg = piece.message;
            open.start = line.start;
            open.msg_at_start = line.messages_before;
        } else {
            open.text.push('\n');
        }
        open.text.push_str(part);
        open.last_msg = piece.message;
        open.stop = line.stop;
        open.dirty = true;
        rest = &rest[part.len()..];
        if open.text.len() >= CHUNK_BYTES {
            let full = std::mem::take(open);
            sealed(full);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn piece(message: u64, len: usize) -> Piece {
        Piece {
            message,
            text: "w ".repeat(len / 2),
        }
    }

    #[test]
    fn chunks_stay_bounded_and_know_their_messages() {
        let mut open = OpenChunk::default();
        let mut sealed = Vec::new();
        for m in 0..40u64 {
            let line = LineAt {
                start: m * 100,
                stop: m * 100 + 99,
                messages_before: m,
            };
            add(&mut open, line, &piece(m, 10_000), &mut |c| sealed.push(c));
        }
        assert!(sealed.iter().all(|c| c.text.len() <= CHUNK_BYTES));
        assert!(sealed.len() >= 5, "{}", sealed.len());
        for pair in sealed.windows(2) {
            assert!(pair[1].first_msg > pair[0].last_msg);
            assert_eq!(pair[1].start, pair[1].first_msg * 100);
        }
        // One huge piece spreads over several chunks of the same message.
        let mut open = OpenChunk::default();
        let mut sealed = Vec::new();
        let line = LineAt {
            start: 0,
            stop: 1,
            messages_before: 7,
        };
        add(&mut open, line, &piece(7, 200_000), &mut |c| sealed.push(c));
        assert_eq!(sealed.len(), 3);
        assert!(sealed.iter().all(|c| c.first_msg == 7 && c.last_msg == 7));
        assert!(!open.is_empty() && open.text.len() < CHUNK_BYTES);
    }
}
