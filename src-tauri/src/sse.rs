//! Server-sent events, parsed incrementally as the WHATWG HTML spec says
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>).
//!
//! Bytes are buffered until a whole line is there and decoded per line, so frames and UTF-8
//! characters may be split across reads at any byte. LF, CRLF and CR all end a line; a CR at
//! the end of one read followed by LF at the start of the next is one line end. Comment lines
//! are reported on their own: they are keep-alives, not data, and must not reset a stall timer.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; "message" when the frame had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event ID seen so far in the stream (it persists across events, as the spec says).
    pub id: Option<String>,
}

/// What a chunk of bytes produced, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    Event(SseEvent),
    /// A `:` comment line (the text after the colon), usually a keep-alive.
    Comment(String),
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental parser: `feed` any byte chunks, collect the items; `finish` at end of stream.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being received (no line end in it).
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    /// Whether the start of the stream was checked for a byte order mark.
    bom_done: bool,
    event_type: String,
    data: String,
    /// A `data` field was seen in the current frame (the data buffer may still be empty).
    has_data: bool,
    last_id: Option<String>,
    /// Reconnection time from a `retry:` field (kept for completeness; we never reconnect).
    retry_ms: Option<u64>,
    /// A known field (`data`, `event`, `id`, `retry`) or a comment was seen.
    saw_field: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `retry:` value, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Whether any line so far was an SSE line (a field other than an unknown one, or a comment
    /// or a blank line ending a frame) — false for a body that is not an event stream at all.
    pub fn has_fields(&self) -> bool {
        self.saw_field
    }

    /// Parses one chunk; returns the events and comments whose lines completed in it.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// Same as `feed`, appending to `out`.
    pub fn feed_into(&mut self, chunk: &[u8], out: &mut Vec<SseItem>) {
        let mut rest = chunk;
        if !self.bom_done {
            // The BOM itself may be split across reads: hold bytes until it is decided.
            self.line.extend_from_slice(rest);
            rest = &[];
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return;
            }
            self.bom_done = true;
            let held = std::mem::take(&mut self.line);
            let held = held.strip_prefix(BOM).unwrap_or(&held);
            self.scan(held, out);
        }
        self.scan(rest, out);
    }

    /// End of stream: an unterminated last line is still a line (spec), but an event that was
    /// not followed by a blank line is discarded (spec: "incomplete event").
    pub fn finish(&mut self) -> Vec<SseItem> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut out);
        }
        // A non-empty line never dispatches; whatever frame was being built is dropped.
        self.reset_frame();
        self.after_cr = false;
        out
    }

    fn scan(&mut self, mut bytes: &[u8], out: &mut Vec<SseItem>) {
        if bytes.is_empty() {
            // Nothing to look at: an empty read must not use up a pending CR.
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = bytes.split_at(end);
            let is_cr = tail.first() == Some(&b'\r');
            let mut after = &tail[1..];
            if is_cr {
                match after.first() {
                    Some(b'\n') => after = &after[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
            }
            bytes = after;
        }
        self.line.extend_from_slice(bytes);
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseItem>) {
        if raw.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(raw);
        if let Some(comment) = line.strip_prefix(':') {
            self.saw_field = true;
            out.push(SseItem::Comment(comment.to_string()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if matches!(field, "event" | "data" | "id" | "retry") {
            self.saw_field = true;
        }
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        if !self.has_data {
            // Spec: a frame without data dispatches nothing, but its event type is reset.
            self.reset_frame();
            return;
        }
        let event = if self.event_type.is_empty() {
            "message".to_string()
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(SseItem::Event(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        }));
        self.reset_frame();
    }

    fn reset_frame(&mut self) {
        self.event_type.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(items: &[SseItem]) -> Vec<(String, String)> {
        items
            .iter()
            .filter_map(|item| match item {
                SseItem::Event(e) => Some((e.event.clone(), e.data.clone())),
                SseItem::Comment(_) => None,
            })
            .collect()
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_end() {
        let mut p = SseParser::new();
        let mut items = p.feed(b"data: a\r");
        items.extend(p.feed(b"\n\r"));
        items.extend(p.feed(b"\ndata: b\n\n"));
        assert_eq!(
            events(&items),
            vec![
                ("message".into(), "a".into()),
                ("message".into(), "b".into())
            ]
        );
    }

    #[test]
    fn first_read_ending_in_cr_then_lf() {
        // The first read goes through the BOM check; its trailing CR must still pair with the LF.
        let mut p = SseParser::new();
        let mut items = p.feed(b"event: start\r");
        items.extend(p.feed(b""));
        items.extend(p.feed(b"\ndata: x\r\n\r\n"));
        assert_eq!(events(&items), vec![("start".into(), "x".into())]);
    }

    #[test]
    fn a_web_page_has_no_fields() {
        let mut p = SseParser::new();
        assert!(p.feed(b"<!doctype html>\n<html>\n").is_empty());
        assert!(!p.has_fields());
        let mut p = SseParser::new();
        p.feed(b"dat");
        assert!(!p.has_fields());
        p.feed(b"a:{}\n");
        assert!(p.has_fields());
    }

    #[test]
    fn bom_split_across_reads() {
        let mut p = SseParser::new();
        let mut items = p.feed(b"\xEF");
        items.extend(p.feed(b"\xBB"));
        items.extend(p.feed(b"\xBFdata: x\n\n"));
        assert_eq!(events(&items), vec![("message".into(), "x".into())]);
    }
}
