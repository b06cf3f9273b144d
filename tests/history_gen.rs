// tests: a fast generator of realistic session logs (for the history-at-scale and storage
// tests): turns of a user question, an assistant reply with a tool call, and a tool result of
// real code (windows of this repository's own sources, as an agent reading files would get),
// todo snapshots now and then. Written straight to disk as JSON lines; nothing is checked in.

use std::io::Write;
use std::path::{Path, PathBuf};

use talaria::history::{self, Header, Record};

/// Words that appear in exactly one place of a generated session, to search for.
pub const LAST_TURN_WORD: &str = "zyxlastturnword";
pub const RESULT_ONLY_WORD: &str = "qqresultonlyword";
pub const ARGUMENT_ONLY_WORD: &str = "qqargumentonlyword";
pub const TODO_ONLY_WORD: &str = "qqtodoonlyword";

/// What was written.
#[derive(Debug, Clone)]
pub struct Generated {
    pub id: String,
    pub path: PathBuf,
    pub messages: u64,
    pub bytes: u64,
}

/// The Rust sources of this repository, read once: the "files" the generated agent reads.
fn corpus() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri/src");
    let mut text = String::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(source) = std::fs::read_to_string(&path)
            {
                text.push_str(&source);
            }
        }
    }
    text
}

/// The log being written, and its size so far.
struct Out {
    file: std::io::BufWriter<std::fs::File>,
    written: u64,
}

impl Out {
    fn put(&mut self, line: &str) {
        self.file.write_all(line.as_bytes()).unwrap();
        self.written += line.len() as u64;
    }
}

/// A JSON string literal of `text`.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

const QUESTIONS: &[&str] = &[
    "Why does the parser reject this input?",
    "Add a flag for verbose output and wire it through",
    "Can you check the error handling in the writer?",
    "Refactor the retry loop so it reads better",
    "Look at how the index is refreshed and speed it up",
    "Find where the session title comes from",
    "Run the tests and fix what fails",
];

/// Writes one session log of about `target` bytes at its dated path under `sessions_dir`,
/// `seed` varying its content. The `*_WORD`s go where their names say (the last-turn word in
/// the last user message).
pub fn big_session(sessions_dir: &Path, target: u64, seed: u64) -> Generated {
    let corpus = corpus();
    let mut rng = fastrand::Rng::with_seed(seed);
    let header = Header::new("openai", "gen-model", "/home/dev/project");
    let path = history::session_path(sessions_dir, header.created, &header.id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let mut out = Out {
        file: std::io::BufWriter::with_capacity(1 << 20, file),
        written: 0,
    };
    out.put(&Record::Session(header.clone()).to_line().unwrap());
    let ts = "2025-06-01T09:30:00.000000Z";
    let mut messages: u64 = 0;
    let mut turn: u64 = 0;
    let middle = target / 2;
    let mut planted = (false, false, false);
    loop {
        turn += 1;
        let last = out.written + 9_000 > target;
        let question = if last {
            format!("One last thing: {LAST_TURN_WORD}, then we are done")
        } else {
            QUESTIONS[rng.usize(..QUESTIONS.len())].to_string()
        };
        out.put(&format!(
            "{{\"type\":\"turn_start\",\"ts\":\"{ts}\",\"turn\":{turn}}}\n"
        ));
        out.put(&format!(
            "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"user\",\"content\":{}}}\n",
            quoted(&question)
        ));
        let plant = out.written > middle;
        let file_name = if plant && !planted.1 {
            planted.1 = true;
            format!("src/{ARGUMENT_ONLY_WORD}.rs")
        } else {
            format!("src/module_{}.rs", rng.usize(..40))
        };
        let call = format!("call_{turn}");
        let arguments = quoted(&format!("{{\"path\":{}}}", quoted(&file_name)));
        out.put(&format!(
                "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"assistant\",\"content\":\"Let me read {file_name} first.\",\"tool_calls\":[{{\"id\":\"{call}\",\"name\":\"read_file\",\"arguments\":{arguments}}}]}}\n"
            ),
        );
        // About 5 KB of real code from a random place in the sources.
        let len = 4_000 + rng.usize(..2_000);
        let mut start = rng.usize(..corpus.len().saturating_sub(len).max(1));
        while !corpus.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(corpus.len());
        while !corpus.is_char_boundary(end) {
            end -= 1;
        }
        let mut result = format!("// {file_name} (turn {turn})\n{}", &corpus[start..end]);
        if plant && !planted.0 {
            planted.0 = true;
            result.insert_str(0, &format!("{RESULT_ONLY_WORD}\n"));
        }
        out.put(&format!(
                "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"tool\",\"tool_call_id\":\"{call}\",\"name\":\"read_file\",\"content\":{}}}\n",
                quoted(&result)
            ),
        );
        if turn.is_multiple_of(25) || (plant && !planted.2) {
            let todo_call = format!("call_todo_{turn}");
            let item = if plant && !planted.2 {
                planted.2 = true;
                format!("Check {TODO_ONLY_WORD} handling")
            } else {
                format!("Step {turn}: review the changes")
            };
            out.put(&format!(
                    "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{{\"id\":\"{todo_call}\",\"name\":\"todo\",\"arguments\":\"{{}}\"}}]}}\n"
                ),
            );
            out.put(&format!(
                    "{{\"type\":\"todo\",\"ts\":\"{ts}\",\"tool_call_id\":\"{todo_call}\",\"todos\":[{{\"id\":\"1\",\"content\":{},\"status\":\"in_progress\"}}]}}\n",
                    quoted(&item)
                ),
            );
            out.put(&format!(
                    "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"tool\",\"tool_call_id\":\"{todo_call}\",\"name\":\"todo\",\"content\":\"1 items: 0 pending, 1 in progress, 0 completed, 0 cancelled\"}}\n"
                ),
            );
            messages += 2;
        }
        let reply = format!(
            "I read {file_name}. The function at line {} handles the case you asked about; \
             I changed the check so it returns early and added a test for it.",
            rng.usize(1..900)
        );
        out.put(&format!(
            "{{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"assistant\",\"content\":{}}}\n",
            quoted(&reply)
        ));
        out.put(&format!(
                "{{\"type\":\"usage\",\"ts\":\"{ts}\",\"usage\":{{\"input_tokens\":1520,\"output_tokens\":230}}}}\n"
            ),
        );
        out.put(&format!(
            "{{\"type\":\"turn_end\",\"ts\":\"{ts}\",\"turn\":{turn},\"status\":\"done\"}}\n"
        ));
        messages += 4;
        if last {
            break;
        }
    }
    out.file.flush().unwrap();
    Generated {
        id: header.id,
        path,
        messages,
        bytes: out.written,
    }
}

/// `count` small finished sessions of a few messages each; session `i` mentions
/// `format!("word{i}x")` (a rare word) and the common word "common".
pub fn small_sessions(sessions_dir: &Path, count: usize) {
    let ts = "2025-06-01T09:30:00.000000Z";
    for i in 0..count {
        let header = Header::new("openai", "gen-model", "/home/dev/project");
        let path = history::session_path(sessions_dir, header.created, &header.id);
        if i == 0 || !path.parent().unwrap().is_dir() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        let mut text = Record::Session(header).to_line().unwrap();
        text.push_str(&format!(
            "{{\"type\":\"turn_start\",\"ts\":\"{ts}\",\"turn\":1}}\n\
             {{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"user\",\"content\":\"session {i}: a common question about word{i}x\"}}\n\
             {{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"assistant\",\"content\":\"A common answer about the parser, number {i}.\"}}\n\
             {{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"user\",\"content\":\"thanks, one more common thing\"}}\n\
             {{\"type\":\"message\",\"ts\":\"{ts}\",\"role\":\"assistant\",\"content\":\"Done: the common case now works.\"}}\n\
             {{\"type\":\"turn_end\",\"ts\":\"{ts}\",\"turn\":1,\"status\":\"done\"}}\n"
        ));
        std::fs::write(&path, text).unwrap();
    }
}
