//! Request checks the real APIs make, with their error messages, so a client that builds a
//! history the real service would reject fails in tests too.

use serde_json::Value;

/// Chat Completions: tool_calls answered by tool messages, tool messages answer a call.
pub fn openai(body: &Value) -> Result<(), String> {
    if body.get("model").and_then(Value::as_str).is_none() {
        return Err("you must provide a model parameter".to_string());
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("Missing required parameter: 'messages'.".to_string());
    };
    if messages.is_empty() {
        return Err(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
                .to_string(),
        );
    }
    if let Some(tools) = body.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err("Invalid type for 'tools': expected an array.".to_string());
        };
        for (i, t) in tools.iter().enumerate() {
            let name = t.pointer("/function/name").and_then(Value::as_str);
            if t.get("type").and_then(Value::as_str) != Some("function") || name.is_none() {
                return Err(format!(
                    "Missing required parameter: 'tools[{i}].function.name'."
                ));
            }
            if let Some(n) = name
                && !valid_name(n, 64)
            {
                return Err(format!(
                    "Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
                ));
            }
        }
    }
    // Ids of the last assistant tool_calls still waiting for their tool messages.
    let mut pending: Vec<String> = Vec::new();
    let mut open_at = 0usize;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "tool" && !pending.is_empty() {
            return Err(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {} (messages.[{open_at}])",
                pending.join(", ")
            ));
        }
        match role {
            "system" | "developer" | "user" => {
                if m.get("content").is_none_or(Value::is_null) {
                    return Err(format!(
                        "Invalid value for 'messages[{i}].content': expected a string, got null."
                    ));
                }
            }
            "assistant" => {
                let calls = m.get("tool_calls").and_then(Value::as_array);
                let has_calls = calls.is_some_and(|c| !c.is_empty());
                if !has_calls && m.get("content").is_none_or(Value::is_null) {
                    return Err(format!(
                        "Invalid value for 'messages[{i}].content': expected a string, got null."
                    ));
                }
                for (j, c) in calls.into_iter().flatten().enumerate() {
                    let Some(id) = c.get("id").and_then(Value::as_str) else {
                        return Err(format!(
                            "Missing required parameter: 'messages[{i}].tool_calls[{j}].id'."
                        ));
                    };
                    if c.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(format!(
                            "Missing required parameter: 'messages[{i}].tool_calls[{j}].type'."
                        ));
                    }
                    if c.pointer("/function/name")
                        .and_then(Value::as_str)
                        .is_none()
                    {
                        return Err(format!(
                            "Missing required parameter: 'messages[{i}].tool_calls[{j}].function.name'."
                        ));
                    }
                    match c.pointer("/function/arguments") {
                        Some(Value::String(_)) => {}
                        Some(other) => {
                            return Err(format!(
                                "Invalid type for 'messages[{i}].tool_calls[{j}].function.arguments': expected a string, but got {} instead.",
                                json_kind(other)
                            ));
                        }
                        None => {
                            return Err(format!(
                                "Missing required parameter: 'messages[{i}].tool_calls[{j}].function.arguments'."
                            ));
                        }
                    }
                    pending.push(id.to_string());
                }
                open_at = i;
            }
            "tool" => {
                let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else {
                    return Err(format!(
                        "Missing required parameter: 'messages[{i}].tool_call_id'."
                    ));
                };
                if let Some(p) = pending.iter().position(|x| x == id) {
                    pending.remove(p);
                } else {
                    return Err(format!(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages.[{i}], tool_call_id {id})"
                    ));
                }
                match m.get("content") {
                    None | Some(Value::Null) => {
                        return Err(format!(
                            "Invalid value for 'messages[{i}].content': expected a string, got null."
                        ));
                    }
                    Some(Value::Array(parts))
                        if parts
                            .iter()
                            .any(|p| p.get("type").and_then(Value::as_str) != Some("text")) =>
                    {
                        return Err(format!(
                            "Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', but this message with role 'tool' contains an image URL."
                        ));
                    }
                    Some(_) => {}
                }
            }
            other => {
                return Err(format!(
                    "Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'. (messages[{i}].role)"
                ));
            }
        }
    }
    if !pending.is_empty() {
        return Err(format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {} (messages.[{open_at}])",
            pending.join(", ")
        ));
    }
    Ok(())
}

/// Messages API: alternation, tool_use/tool_result pairing, non-empty text, signed thinking.
pub fn anthropic(body: &Value) -> Result<(), String> {
    if body.get("model").and_then(Value::as_str).is_none() {
        return Err("model: Field required".to_string());
    }
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return Err("max_tokens: Field required".to_string());
    };
    if let Some(thinking) = body.get("thinking") {
        match thinking.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let Some(budget) = thinking.get("budget_tokens").and_then(Value::as_u64) else {
                    return Err("thinking.enabled.budget_tokens: Field required".to_string());
                };
                if budget < 1024 {
                    return Err("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".to_string());
                }
                if budget >= max_tokens {
                    return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".to_string());
                }
            }
            Some("disabled") => {}
            _ => return Err("thinking.type: Input tag does not match any of the expected tags: 'enabled', 'disabled'".to_string()),
        }
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("messages: Field required".to_string());
    };
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_string());
    }
    if let Some(tools) = body.get("tools") {
        let mut seen = std::collections::HashSet::new();
        for t in tools.as_array().into_iter().flatten() {
            if let Some(name) = t.get("name").and_then(Value::as_str)
                && !seen.insert(name)
            {
                return Err("tools: Tool names must be unique.".to_string());
            }
        }
        for (i, t) in tools.as_array().into_iter().flatten().enumerate() {
            let custom = t.get("type").is_none_or(|v| v == "custom");
            if custom {
                match t.get("name").and_then(Value::as_str) {
                    Some(n) if valid_name(n, 128) => {}
                    Some(_) => {
                        return Err(format!(
                            "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                        ));
                    }
                    None => return Err(format!("tools.{i}.custom.name: Field required")),
                }
                if !t.get("input_schema").is_some_and(Value::is_object) {
                    return Err(format!("tools.{i}.custom.input_schema: Field required"));
                }
            }
        }
    }
    if let Some(system) = body.get("system")
        && !(system.is_string() || system.is_array())
    {
        return Err("system: Input should be a valid string or list".to_string());
    }
    let last = messages.len() - 1;
    let mut prev_role = "";
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if i == 0 && role != "user" {
            return Err("messages: first message must use the \"user\" role".to_string());
        }
        if role == prev_role {
            return Err(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
            ));
        }
        prev_role = role;
        let blocks: Vec<Value> = match m.get("content") {
            Some(Value::String(s)) => {
                if s.is_empty() && !(role == "assistant" && i == last) {
                    return Err(format!(
                        "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                    ));
                }
                vec![serde_json::json!({"type": "text", "text": s})]
            }
            Some(Value::Array(a)) => {
                if a.is_empty() && !(role == "assistant" && i == last) {
                    return Err(format!(
                        "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                    ));
                }
                a.clone()
            }
            _ => return Err(format!("messages.{i}.content: Field required")),
        };
        // tool_result blocks must come first in the user message after a tool_use.
        let mut results_done = false;
        let mut results: Vec<String> = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let typ = b.get("type").and_then(Value::as_str).unwrap_or("");
            match typ {
                "text" => {
                    let t = b.get("text").and_then(Value::as_str);
                    match t {
                        None => {
                            return Err(format!(
                                "messages.{i}.content.{j}.text.text: Field required"
                            ));
                        }
                        Some("") if !(m.get("content").is_some_and(Value::is_string)) => {
                            return Err(
                                "messages: text content blocks must be non-empty".to_string()
                            );
                        }
                        Some(_) => {}
                    }
                    results_done = true;
                }
                "thinking" => {
                    if role != "assistant" {
                        return Err(format!(
                            "messages.{i}.content.{j}: thinking blocks are only allowed in assistant messages"
                        ));
                    }
                    if b.get("thinking").and_then(Value::as_str).is_none() {
                        return Err(format!(
                            "messages.{i}.content.{j}.thinking.thinking: Field required"
                        ));
                    }
                    if b.get("signature")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.thinking.signature: Field required"
                        ));
                    }
                }
                "redacted_thinking" => {}
                "tool_use" => {
                    if role != "assistant" {
                        return Err(format!(
                            "messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages"
                        ));
                    }
                    let id = b.get("id").and_then(Value::as_str).unwrap_or("");
                    if id.is_empty()
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                        ));
                    }
                    if b.get("name").and_then(Value::as_str).is_none() {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use.name: Field required"
                        ));
                    }
                    if !b.get("input").is_some_and(Value::is_object) {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"
                        ));
                    }
                }
                "tool_result" => {
                    if role != "user" {
                        return Err(format!(
                            "messages.{i}.content.{j}: tool_result blocks are only allowed in user messages"
                        ));
                    }
                    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    if !pending.iter().any(|p| p == id) {
                        return Err(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                    if results_done {
                        return Err(format!(
                            "messages.{i}: `tool_result` blocks must come first in the user message, before any other content"
                        ));
                    }
                    tool_result_content(b, i, j)?;
                    results.push(id.to_string());
                }
                "image" | "document" | "search_result" => results_done = true,
                other => {
                    return Err(format!(
                        "messages.{i}.content.{j}: Input tag '{other}' found using 'type' does not match any of the expected tags"
                    ));
                }
            }
        }
        if role == "user" {
            let missing: Vec<&String> = pending.iter().filter(|p| !results.contains(p)).collect();
            if !missing.is_empty() {
                return Err(format!(
                    "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    i.saturating_sub(1),
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            pending.clear();
        } else {
            pending = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                .filter_map(|b| b.get("id").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
    }
    // A final assistant message with tool_use (prefill) is rejected too.
    if !pending.is_empty() {
        return Err(format!(
            "messages.{last}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            pending.join(", ")
        ));
    }
    Ok(())
}

/// A `tool_result`'s content: a string, or text and image blocks (base64 in a type the API
/// takes).
fn tool_result_content(block: &Value, i: usize, j: usize) -> Result<(), String> {
    let Some(content) = block.get("content") else {
        return Ok(());
    };
    let blocks = match content {
        Value::String(_) => return Ok(()),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(format!(
                "messages.{i}.content.{j}.tool_result.content: Input should be a valid list"
            ));
        }
    };
    for (k, b) in blocks.iter().enumerate() {
        let at = format!("messages.{i}.content.{j}.tool_result.content.{k}");
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                if b.get("text")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err("messages: text content blocks must be non-empty".to_string());
                }
            }
            "image" => {
                let source = b.get("source");
                if source.and_then(|s| s.get("type")).and_then(Value::as_str) != Some("base64") {
                    return Err(format!(
                        "{at}.image.source: Input tag does not match any of the expected tags: 'base64', 'url'"
                    ));
                }
                let media = source
                    .and_then(|s| s.get("media_type"))
                    .and_then(Value::as_str);
                if !matches!(
                    media,
                    Some("image/jpeg" | "image/png" | "image/gif" | "image/webp")
                ) {
                    return Err(format!(
                        "{at}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                    ));
                }
                if source
                    .and_then(|s| s.get("data"))
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(format!("{at}.image.source.base64.data: Field required"));
                }
            }
            "document" | "search_result" => {}
            other => {
                return Err(format!(
                    "{at}: Input tag '{other}' found using 'type' does not match any of the expected tags: 'text', 'image', 'search_result', 'document'"
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(n: &str, max: usize) -> bool {
    !n.is_empty()
        && n.len() <= max
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
