//! The SSE parser: line ends, comments, multi-line data, BOM, UTF-8 and frames split anywhere.

use proptest::prelude::*;
use talaria::sse::{SseEvent, SseItem, SseParser};

/// A recorded Chat Completions stream (LF line ends), with multi-byte characters and a keep-alive.
const OPENAI: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo 世界 🎉\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\\\"a.txt\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n",
    "data: [DONE]\n\n",
);

/// A recorded Messages stream (LF line ends) with thinking, text, tool use and pings.
const ANTHROPIC: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think… ✓\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig-abc\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Grüße 👋\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"todo\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"todos\\\":\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"[]}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":34}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

fn parse_all(chunks: &[&[u8]]) -> Vec<SseItem> {
    let mut parser = SseParser::new();
    let mut items = Vec::new();
    for chunk in chunks {
        items.extend(parser.feed(chunk));
    }
    items.extend(parser.finish());
    items
}

fn event(event: &str, data: &str) -> SseItem {
    SseItem::Event(SseEvent {
        event: event.to_string(),
        data: data.to_string(),
        id: None,
    })
}

fn only_events(items: &[SseItem]) -> Vec<SseEvent> {
    items
        .iter()
        .filter_map(|item| match item {
            SseItem::Event(e) => Some(e.clone()),
            SseItem::Comment(_) => None,
        })
        .collect()
}

/// The same stream with other line ends: LF, CRLF or CR.
fn with_line_end(text: &str, end: &str) -> Vec<u8> {
    text.replace('\n', end).into_bytes()
}

fn split_at(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(bytes[start..cut].to_vec());
        start = cut;
    }
    pieces.push(bytes[start..].to_vec());
    pieces
}

fn parse_pieces(pieces: &[Vec<u8>]) -> Vec<SseItem> {
    let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    parse_all(&refs)
}

#[test]
fn line_ends_lf_crlf_cr() {
    for end in ["\n", "\r\n", "\r"] {
        let text = format!("data: a{end}data: b{end}{end}event: x{end}data: c{end}{end}");
        assert_eq!(
            parse_all(&[text.as_bytes()]),
            vec![event("message", "a\nb"), event("x", "c")],
            "line end {end:?}"
        );
    }
}

#[test]
fn cr_then_lf_in_next_chunk_is_one_line_end() {
    let items = parse_all(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]);
    assert_eq!(items, vec![event("message", "a"), event("message", "b")]);
}

#[test]
fn cr_lf_split_in_the_first_read_and_around_empty_reads() {
    let items = parse_all(&[b"event: start\r", b"", b"\ndata: x\r", b"", b"\n\r\n"]);
    assert_eq!(items, vec![event("start", "x")]);
}

#[test]
fn cr_alone_at_chunk_end_dispatches_without_waiting() {
    let mut parser = SseParser::new();
    assert!(parser.feed(b"data: a\r").is_empty());
    // The blank line arrives as a lone CR: the event is out without the next chunk.
    assert_eq!(parser.feed(b"\r"), vec![event("message", "a")]);
    assert_eq!(parser.feed(b"\ndata: b\n\n"), vec![event("message", "b")]);
}

#[test]
fn comments_are_reported_separately() {
    let items = parse_all(&[b": keep-alive\n\n:\ndata: x\n: inside\n\n"]);
    assert_eq!(
        items,
        vec![
            SseItem::Comment(" keep-alive".into()),
            SseItem::Comment(String::new()),
            SseItem::Comment(" inside".into()),
            event("message", "x"),
        ]
    );
}

#[test]
fn field_parsing_by_the_spec() {
    // No space after the colon; only one leading space stripped; a bare field name; unknown fields.
    let text = "data:one\ndata:  two\ndata\nfoo: bar\nevent:kind\n\n";
    assert_eq!(
        parse_all(&[text.as_bytes()]),
        vec![event("kind", "one\n two\n")]
    );
    // A frame without data dispatches nothing and does not leak its event type.
    assert_eq!(
        parse_all(&[b"event: lost\n\ndata: x\n\n"]),
        vec![event("message", "x")]
    );
    // Empty data still dispatches an event with empty data.
    assert_eq!(parse_all(&[b"data\n\n"]), vec![event("message", "")]);
}

#[test]
fn id_persists_and_nul_ids_are_ignored() {
    let items = only_events(&parse_all(&[
        b"id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n",
    ]));
    let ids: Vec<Option<&str>> = items.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, vec![Some("7"), Some("7"), Some("7"), Some("")]);
}

#[test]
fn retry_field_is_kept() {
    let mut parser = SseParser::new();
    parser.feed(b"retry: 1500\n\nretry: soon\n\n");
    assert_eq!(parser.retry_ms(), Some(1500));
}

#[test]
fn unterminated_event_at_end_is_dropped() {
    assert_eq!(
        parse_all(&[b"data: complete\n\ndata: incomplete"]),
        vec![event("message", "complete")]
    );
    assert_eq!(
        parse_all(&[b"data: complete\n\ndata: incomplete\n"]),
        vec![event("message", "complete")]
    );
}

#[test]
fn bom_at_start_only() {
    let bom = "\u{feff}";
    let text = format!("{bom}data: a\n\n");
    assert_eq!(parse_all(&[text.as_bytes()]), vec![event("message", "a")]);
    // Split inside the BOM.
    let bytes = text.as_bytes();
    assert_eq!(
        parse_all(&[&bytes[..1], &bytes[1..2], &bytes[2..]]),
        vec![event("message", "a")]
    );
    // A BOM later in the stream is not stripped: it makes a field name that is ignored.
    let later = format!("data: a\n\n{bom}data: b\n\n");
    assert_eq!(parse_all(&[later.as_bytes()]), vec![event("message", "a")]);
    // A stream shorter than a BOM still works.
    assert_eq!(parse_all(&[b"\n"]), vec![]);
}

#[test]
fn utf8_split_inside_a_character() {
    let text = "data: 世🎉\n\n";
    let bytes = text.as_bytes();
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse_all(&[&bytes[..cut], &bytes[cut..]]),
            vec![event("message", "世🎉")],
            "cut at {cut}"
        );
    }
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    assert_eq!(
        parse_all(&[b"data: a\xFFb\n\n"]),
        vec![event("message", "a\u{FFFD}b")]
    );
}

#[test]
fn recorded_streams_parse_to_the_expected_events() {
    let openai = parse_all(&[OPENAI.as_bytes()]);
    let events = only_events(&openai);
    assert_eq!(events.len(), 7);
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    assert_eq!(
        openai
            .iter()
            .filter(|i| matches!(i, SseItem::Comment(_)))
            .count(),
        2
    );
    let anthropic = only_events(&parse_all(&[ANTHROPIC.as_bytes()]));
    let kinds: Vec<&str> = anthropic.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.get(1), Some(&"ping"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    assert_eq!(anthropic.len(), 15);
    assert!(anthropic.iter().any(|e| e.data.contains("Grüße 👋")));
}

#[test]
fn every_single_byte_split_matches_the_whole() {
    for stream in [OPENAI, ANTHROPIC] {
        for end in ["\n", "\r\n", "\r"] {
            let bytes = with_line_end(stream, end);
            let whole = parse_all(&[&bytes]);
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(parse_all(&bytewise), whole, "line end {end:?}");
            // The line end does not change the events.
            assert_eq!(whole, parse_all(&[stream.as_bytes()]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any split of a recorded stream (both providers, LF/CRLF/CR, with or without BOM) into
    /// reads gives the same events and comments as reading it whole.
    #[test]
    fn any_split_gives_the_same_items(
        which in 0usize..2,
        end in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        bom in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream = if which == 0 { OPENAI } else { ANTHROPIC };
        let mut bytes = if bom { "\u{feff}".as_bytes().to_vec() } else { Vec::new() };
        bytes.extend(with_line_end(stream, end));
        let expected = parse_all(&[stream.as_bytes()]);
        let pieces = split_at(&bytes, &cuts);
        prop_assert_eq!(parse_pieces(&pieces), expected);
    }

    /// Arbitrary bytes never panic, and splitting never changes the result.
    #[test]
    fn arbitrary_bytes_split_anywhere(
        bytes in prop::collection::vec(prop::sample::select(
            vec![b'\n', b'\r', b':', b' ', b'd', b'a', b't', b'e', 0xE4, 0xB8, 0x96, 0xFF]), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = parse_all(&[&bytes]);
        prop_assert_eq!(parse_pieces(&split_at(&bytes, &cuts)), whole);
    }
}
