//! What an MCP tool returned, as the model and the log take it: text (JSON results as text),
//! images the providers accept, and a placeholder naming the type of anything else.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

use crate::message::ToolImage;

/// Longest text kept of one result: the head and the tail, half each.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Largest image passed on (decoded); Anthropic's limit per image.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Image types both providers' vision inputs take.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A converted result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpOutput {
    pub content: String,
    pub is_error: bool,
    pub images: Vec<ToolImage>,
}

impl McpOutput {
    pub fn error(content: impl Into<String>) -> McpOutput {
        McpOutput {
            content: content.into(),
            is_error: true,
            images: Vec::new(),
        }
    }
}

/// Converts a `tools/call` result. Never fails: what cannot be passed on is named instead.
pub fn convert(result: CallToolResult) -> McpOutput {
    let mut parts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut has_text = false;
    for block in result.content {
        match block {
            ContentBlock::Text(text) => {
                has_text = true;
                parts.push(text.text);
            }
            ContentBlock::Image(image) => match image_problem(&image.mime_type, &image.data) {
                None => {
                    parts.push(format!("[image {}: {}]", images.len() + 1, image.mime_type));
                    images.push(ToolImage {
                        mime_type: image.mime_type,
                        data: image.data,
                    });
                }
                Some(problem) => parts.push(format!(
                    "[image ({}, {}): not shown, {problem}]",
                    image.mime_type,
                    size(decoded_len(&image.data))
                )),
            },
            ContentBlock::Audio(audio) => parts.push(format!(
                "[audio ({}, {}): not shown, Talaria passes no audio to the model]",
                audio.mime_type,
                size(decoded_len(&audio.data))
            )),
            ContentBlock::Resource(embedded) => match embedded.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    has_text = true;
                    parts.push(format!("[resource {uri}]\n{text}"));
                }
                ResourceContents::BlobResourceContents {
                    uri,
                    mime_type,
                    blob,
                    ..
                } => parts.push(format!(
                    "[resource {uri} ({}, {}): binary content not shown]",
                    mime_type.as_deref().unwrap_or("unknown type"),
                    size(decoded_len(&blob))
                )),
                // Non-exhaustive: a kind of resource added to the protocol later.
                _ => parts.push("[resource of a kind Talaria does not know: not shown]".into()),
            },
            ContentBlock::ResourceLink(link) => {
                let mut line = format!("[resource link: {}", link.uri);
                if !link.name.is_empty() {
                    line.push_str(&format!(" ({})", link.name));
                }
                if let Some(description) = link.description.as_deref().filter(|d| !d.is_empty()) {
                    line.push_str(&format!(": {description}"));
                }
                line.push(']');
                parts.push(line);
            }
            // ContentBlock is non-exhaustive: a type added to the protocol later.
            _ => parts.push("[content of a type Talaria does not know: not shown]".to_string()),
        }
    }
    // Structured results usually repeat themselves as text; when they do not, the JSON is the
    // result.
    if !has_text
        && let Some(structured) = result.structured_content
        && !structured.is_null()
    {
        parts.insert(
            0,
            serde_json::to_string_pretty(&structured).unwrap_or_else(|_| structured.to_string()),
        );
    }
    let is_error = result.is_error == Some(true);
    let mut content = parts.join("\n");
    if is_error && content.trim().is_empty() {
        content = "the tool reported an error without saying what went wrong".to_string();
    }
    McpOutput {
        content: clip_middle(&content, MAX_TEXT_CHARS),
        is_error,
        images,
    }
}

/// Why an image cannot be passed on, if it cannot.
fn image_problem(mime_type: &str, data: &str) -> Option<&'static str> {
    if !IMAGE_TYPES.contains(&mime_type) {
        return Some("the model takes PNG, JPEG, GIF or WebP images only");
    }
    if decoded_len(data) > MAX_IMAGE_BYTES {
        return Some("larger than the 5 MB the providers take");
    }
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if data.is_empty() || !data.bytes().all(base64) {
        return Some("its data is not valid base64");
    }
    None
}

fn decoded_len(base64: &str) -> usize {
    base64.len() / 4 * 3
}

fn size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// `text` if short enough, else its head and tail around a note of what was cut.
fn clip_middle(text: &str, max_chars: usize) -> String {
    let total = text.chars().count();
    if total <= max_chars {
        return text.to_string();
    }
    let half = max_chars / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(total - half).collect();
    format!(
        "{head}\n[… {} characters cut: the result was {total} characters long …]\n{tail}",
        total - 2 * half
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rmcp::model::{AudioContent, ContentBlock};

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    fn result(content: Vec<ContentBlock>) -> CallToolResult {
        CallToolResult::success(content)
    }

    #[test]
    fn text_and_images() {
        let out = convert(result(vec![
            ContentBlock::text("a tiny image:"),
            ContentBlock::image(PNG, "image/png"),
        ]));
        assert!(!out.is_error);
        assert_eq!(out.content, "a tiny image:\n[image 1: image/png]");
        assert_eq!(
            out.images,
            vec![ToolImage {
                mime_type: "image/png".into(),
                data: PNG.into()
            }]
        );
    }

    #[test]
    fn other_types_get_placeholders() {
        let out = convert(result(vec![
            ContentBlock::image("PHN2Zz4=", "image/svg+xml"),
            ContentBlock::Audio(AudioContent::new("AAAA", "audio/wav")),
            ContentBlock::resource(ResourceContents::BlobResourceContents {
                uri: "file:///x.bin".into(),
                mime_type: Some("application/octet-stream".into()),
                blob: "AAAA".into(),
                meta: None,
            }),
            ContentBlock::embedded_text("file:///a.txt", "hello"),
        ]));
        assert!(out.images.is_empty());
        assert!(
            out.content
                .contains("[image (image/svg+xml, 6 B): not shown, the model takes PNG"),
            "{}",
            out.content
        );
        assert!(out.content.contains("[audio (audio/wav, 3 B): not shown"));
        assert!(
            out.content
                .contains("[resource file:///x.bin (application/octet-stream, 3 B): binary")
        );
        assert!(out.content.contains("[resource file:///a.txt]\nhello"));
    }

    #[test]
    fn structured_content_without_text_is_the_result() {
        let mut r = result(vec![]);
        r.structured_content = Some(serde_json::json!({"sum": 3}));
        assert_eq!(convert(r).content, "{\n  \"sum\": 3\n}");
        let mut r = result(vec![ContentBlock::text("{\"sum\":3}")]);
        r.structured_content = Some(serde_json::json!({"sum": 3}));
        assert_eq!(convert(r).content, "{\"sum\":3}");
    }

    #[test]
    fn errors_and_long_text() {
        let out = convert(CallToolResult::error(vec![ContentBlock::text("bad input")]));
        assert!(out.is_error);
        assert_eq!(out.content, "bad input");
        let out = convert(CallToolResult::error(vec![]));
        assert!(out.is_error && !out.content.is_empty());
        let long = "x".repeat(MAX_TEXT_CHARS + 10);
        let out = convert(result(vec![ContentBlock::text(long)]));
        assert!(out.content.len() < MAX_TEXT_CHARS + 200);
        assert!(out.content.contains("10 characters cut"));
    }
}
