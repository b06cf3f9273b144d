//! docs/cli.md against the real program. Every command, argument and flag that `--help` shows
//! must be a row of a table under that command's heading in docs/cli.md, and every row there
//! must still exist; the exit codes a command's `--help` lists, every event type and error kind
//! that `exec --json` can print, and every environment variable Talaria reads must be rows too.
//! And no file of the repository may point outside it.
//!
//! The rules for docs/cli.md that this reads:
//! - A command's section starts at a heading `talaria` or `talaria WORDS` (any level) and ends
//!   at the next heading of the same or a higher level, or at the next command heading.
//! - Its arguments and flags are rows of tables whose header's first cell is `flag` or
//!   `argument or flag`: the first cell holds the names in backticks (`` `-V`, `--version` ``,
//!   `` `--model NAME` ``, `` `PROMPT` ``).
//! - Exit codes are rows of a table headed `code` in the command's section; events, error kinds
//!   and environment variables are rows of tables headed `type`, `kind` and `variable`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cli_doc() -> String {
    std::fs::read_to_string(root().join("docs/cli.md")).expect("docs/cli.md exists")
}

/// What one `talaria … --help` shows.
#[derive(Debug, Default)]
struct Help {
    commands: Vec<String>,
    arguments: BTreeSet<String>,
    flags: BTreeSet<String>,
    exit_codes: BTreeSet<String>,
}

fn help(path: &[String]) -> Help {
    let out = Command::new(BIN)
        .args(path)
        .arg("--help")
        .env_remove("TALARIA_DATA_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "talaria {} --help: {text}{}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_help(&text)
}

/// The first word of `text` made of name characters.
fn word(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Reads clap's help layout: `Commands:`, `Arguments:` and `Options:` blocks of lines indented
/// two spaces (flags without a short form are indented six), and an `Exit codes:` line.
fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut block = "";
    for line in text.lines() {
        if !line.starts_with(' ') {
            block = if line.ends_with(':') { line } else { "" };
            if let Some(codes) = line.strip_prefix("Exit codes") {
                let codes = codes.split_once(':').map_or("", |(_, list)| list);
                for item in codes.split(';') {
                    help.exit_codes.insert(word(item.trim()).to_string());
                }
            }
            continue;
        }
        match block {
            "Commands:" => {
                if let Some(rest) = line.strip_prefix("  ")
                    && !rest.starts_with(' ')
                {
                    help.commands.push(word(rest).to_string());
                }
            }
            "Arguments:" => {
                if let Some(rest) = line.strip_prefix("  ")
                    && let Some(name) = rest.strip_prefix(['<', '['])
                {
                    help.arguments.insert(word(name).to_string());
                }
            }
            "Options:" => {
                if let Some(long) = line.strip_prefix("      --") {
                    help.flags.insert(format!("--{}", word(long)));
                } else if let Some(rest) = line.strip_prefix("  -")
                    && rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                {
                    help.flags.insert(format!("-{}", &rest[..1]));
                    if let Some(long) = rest[1..].strip_prefix(", --") {
                        help.flags.insert(format!("--{}", word(long)));
                    }
                }
            }
            _ => {}
        }
    }
    help
}

/// One table of docs/cli.md: the first cell of its header and of each row.
#[derive(Debug)]
struct Table {
    header: String,
    rows: Vec<String>,
}

/// Text under one heading, down to the next heading of the same or a higher level.
#[derive(Debug)]
struct Section {
    /// The command words after `talaria` ("" for `talaria` itself); None for other headings.
    command: Option<String>,
    tables: Vec<Table>,
}

impl Section {
    fn rows<'a>(&'a self, headers: &'a [&str]) -> impl Iterator<Item = &'a str> {
        self.tables
            .iter()
            .filter(|t| headers.contains(&t.header.as_str()))
            .flat_map(|t| t.rows.iter().map(String::as_str))
    }
}

fn first_cell(line: &str) -> Option<String> {
    let cell = line.strip_prefix('|')?.split('|').next()?.trim();
    Some(cell.to_string())
}

/// The names in a row's first cell: each backticked span's first word (`-V`, `--model`,
/// `PROMPT`), or the bare cell (`0`, `130`).
fn names(cell: &str) -> Vec<String> {
    let spans: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
    if spans.is_empty() {
        return vec![cell.to_string()];
    }
    spans
        .iter()
        .map(|span| {
            let start = span.trim_start_matches('-');
            let dashes = span.len() - start.len();
            format!("{}{}", &span[..dashes], word(start))
        })
        .collect()
}

/// Splits docs/cli.md into its sections (a command section ends at the next heading of its
/// level or higher, or the next command heading) and their tables. Fenced code is skipped.
fn sections(doc: &str) -> Vec<Section> {
    let mut all: Vec<Section> = Vec::new();
    // The open command section and its heading level.
    let mut open: Option<(usize, usize)> = None;
    let mut fenced = false;
    let mut in_table = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if line.starts_with('#') {
            in_table = false;
            let level = line.chars().take_while(|&c| c == '#').count();
            let title = line[level..].trim();
            let words: Vec<&str> = title.split_whitespace().collect();
            let command = (words.first() == Some(&"talaria")
                && words[1..]
                    .iter()
                    .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-')))
            .then(|| words[1..].join(" "));
            let ends_open = command.is_some() || open.is_some_and(|(_, at)| level <= at);
            if ends_open {
                open = None;
            }
            if command.is_some() {
                open = Some((all.len(), level));
                all.push(Section {
                    command,
                    tables: Vec::new(),
                });
            } else if open.is_none() {
                all.push(Section {
                    command: None,
                    tables: Vec::new(),
                });
            }
            continue;
        }
        let Some(cell) = first_cell(line) else {
            in_table = false;
            continue;
        };
        if all.is_empty() {
            all.push(Section {
                command: None,
                tables: Vec::new(),
            });
        }
        let at = open.map_or(all.len() - 1, |(index, _)| index);
        let section = &mut all[at];
        if !in_table {
            section.tables.push(Table {
                header: cell,
                rows: Vec::new(),
            });
            in_table = true;
        } else if !cell.starts_with("---")
            && let Some(table) = section.tables.last_mut()
        {
            table.rows.push(cell);
        }
    }
    all
}

const FLAG_TABLES: &[&str] = &["flag", "argument or flag"];

#[test]
fn every_command_argument_flag_and_exit_code_in_help_is_documented_and_nothing_else() {
    let doc = cli_doc();
    let sections = sections(&doc);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = queue.pop() {
        let shown = help(&path);
        for child in &shown.commands {
            if child != "help" {
                let mut next = path.clone();
                next.push(child.clone());
                queue.push(next);
            }
        }
        let command = path.join(" ");
        let heading = format!("talaria {command}").trim().to_string();
        seen.insert(command.clone());
        let Some(section) = sections
            .iter()
            .find(|s| s.command.as_deref() == Some(command.as_str()))
        else {
            problems.push(format!(
                "`{heading}` has no section: add a heading `## {heading}` with a table \
                 (`| argument or flag | meaning |`) that has a row for each of its arguments and \
                 flags"
            ));
            continue;
        };
        let documented: BTreeSet<String> = section.rows(FLAG_TABLES).flat_map(names).collect();
        let mut wanted: BTreeSet<String> = shown.flags.clone();
        if !path.is_empty() {
            // Every command takes -h/--help; the page says so once.
            wanted.remove("-h");
            wanted.remove("--help");
        }
        wanted.extend(shown.arguments.iter().cloned());
        for name in wanted.difference(&documented) {
            problems.push(format!(
                "`{heading}` shows `{name}` in --help but docs/cli.md does not: add a row \
                 `| `{name} …` | what it does |` to the flag table under `{heading}`"
            ));
        }
        for name in documented.difference(&wanted) {
            if !(name == "--help" || name == "-h") {
                problems.push(format!(
                    "docs/cli.md documents `{name}` under `{heading}`, which --help does not show: \
                     remove the row or fix its name"
                ));
            }
        }
        let codes: BTreeSet<String> = section.rows(&["code"]).flat_map(names).collect();
        for code in shown.exit_codes.difference(&codes) {
            problems.push(format!(
                "`{heading} --help` lists exit code {code}; add it to the `| code | … |` table \
                 under `{heading}` in docs/cli.md"
            ));
        }
        if !shown.exit_codes.is_empty() {
            for code in codes.difference(&shown.exit_codes) {
                problems.push(format!(
                    "docs/cli.md lists exit code {code} under `{heading}`, which its --help does \
                     not: add it to the command's `Exit codes:` help text, or remove the row"
                ));
            }
        }
    }
    for section in &sections {
        if let Some(command) = &section.command
            && !seen.contains(command)
        {
            problems.push(format!(
                "docs/cli.md has a section `talaria {command}`, which --help does not know"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The names serde accepts for `T`'s variants, from its "unknown variant" message.
fn variant_names<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    value: serde_json::Value,
) -> BTreeSet<String> {
    let error = serde_json::from_value::<T>(value).unwrap_err().to_string();
    let list = error
        .split_once("expected one of")
        .unwrap_or_else(|| panic!("no variant list in: {error}"))
        .1;
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Fails with what to add and what to remove when the rows of the `header` table differ from
/// what the code has.
fn assert_rows(doc: &str, header: &str, table: &str, want: &BTreeSet<String>) {
    let have = table_rows(doc, header);
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the `{table}` table in docs/cli.md: add rows for {missing:?}, remove rows for {extra:?}"
    );
}

fn table_rows(doc: &str, header: &str) -> BTreeSet<String> {
    sections(doc)
        .iter()
        .flat_map(|s| s.rows(&[header]).flat_map(names).collect::<Vec<_>>())
        .collect()
}

#[test]
fn every_event_type_and_error_kind_is_documented() {
    let doc = cli_doc();
    let types = variant_names::<talaria::event::Event>(serde_json::json!({"type": "?"}));
    assert!(
        types.contains("token") && types.contains("cancelled"),
        "{types:?}"
    );
    assert_rows(&doc, "type", "| type | fields | when |", &types);
    let kinds = variant_names::<talaria::event::ErrorKind>(serde_json::json!("?"));
    assert_rows(&doc, "kind", "| kind | meaning |", &kinds);
}

#[test]
fn every_environment_variable_is_documented() {
    let documented = table_rows(&cli_doc(), "variable");
    let mut missing: Vec<&str> = talaria::config::ENV_VARS
        .iter()
        .copied()
        .chain([
            "TALARIA_DATA_DIR",
            "TALARIA_LOG",
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
        ])
        .filter(|name| !documented.contains(*name))
        .collect();
    missing.sort_unstable();
    assert!(
        missing.is_empty(),
        "add rows for {missing:?} to the `| variable | meaning |` table in docs/cli.md"
    );
}

#[test]
fn help_parsing_reads_clap_layouts() {
    let text = "Usage: talaria x [OPTIONS] <ID> [ARGS]...\n\nCommands:\n  list  List\n  \
                help  Print\n\nArguments:\n  <ID>  \n  [ARGS]...  more\n\nOptions:\n      --json  \
                One\n  -n, --limit <N>  At most\n  -q  Quiet\n          --not-an-option in a \
                wrapped line\n  -h, --help  Print help\n\nExit codes: 0 done; 2 bad usage.\n";
    let help = parse_help(text);
    assert_eq!(help.commands, ["list", "help"]);
    assert_eq!(help.arguments, BTreeSet::from(["ID".into(), "ARGS".into()]));
    let flags: Vec<&str> = help.flags.iter().map(String::as_str).collect();
    assert_eq!(flags, ["--help", "--json", "--limit", "-h", "-n", "-q"]);
    assert_eq!(help.exit_codes, BTreeSet::from(["0".into(), "2".into()]));
}

#[test]
fn doc_parsing_reads_sections_and_tables() {
    let doc = "# Title\n\n## talaria\n\n| flag | meaning |\n| --- | --- |\n| `-V`, `--version` | v |\n\n\
               ## Environment\n\n| variable | meaning |\n| --- | --- |\n| `TALARIA_LOG` | x |\n\n\
               ## talaria exec\n\n```\n# not a heading\n```\n\n| argument or flag | meaning |\n\
               | --- | --- |\n| `PROMPT` | p |\n| `--provider openai\\|anthropic` | p |\n\n\
               ### Events\n\n| type | fields |\n| --- | --- |\n| `token` | text |\n\n\
               ### talaria exec more\n\n| code | meaning |\n| --- | --- |\n| 130 | c |\n";
    let sections = sections(doc);
    let commands: Vec<Option<&str>> = sections.iter().map(|s| s.command.as_deref()).collect();
    assert_eq!(
        commands,
        [None, Some(""), None, Some("exec"), Some("exec more")]
    );
    let flags =
        |i: usize| -> Vec<String> { sections[i].rows(FLAG_TABLES).flat_map(names).collect() };
    assert_eq!(flags(1), ["-V", "--version"]);
    assert_eq!(flags(3), ["PROMPT", "--provider"]);
    assert_eq!(table_rows(doc, "type"), BTreeSet::from(["token".into()]));
    assert_eq!(
        table_rows(doc, "variable"),
        BTreeSet::from(["TALARIA_LOG".into()])
    );
    assert_eq!(sections[4].rows(&["code"]).collect::<Vec<_>>(), ["130"]);
}

/// Files whose text is checked: everything in the repository but build output, dependencies
/// and images.
fn repository_files(dir: &Path, found: &mut Vec<PathBuf>) {
    const SKIP: &[&str] = &[
        "target",
        "node_modules",
        "dist",
        "gen",
        "out",
        ".git",
        ".make",
    ];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if SKIP.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            repository_files(&path, found);
        } else if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("png" | "ico" | "icns" | "lock")
        ) {
            found.push(path);
        }
    }
}

#[test]
fn no_file_points_outside_the_repository() {
    // Spelled in pieces so that this file does not match itself.
    let outside = [
        ["CONTRACTS", ".md"].concat(),
        ["../", "shared"].concat(),
        ["/work", "/"].concat(),
    ];
    let mut files = Vec::new();
    repository_files(&root(), &mut files);
    assert!(files.len() > 20, "found only {files:?}");
    let mut problems = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for needle in &outside {
            if text.contains(needle.as_str()) {
                problems.push(format!("{} mentions {needle}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the repository must stand alone; point at docs/ instead:\n{}",
        problems.join("\n")
    );
}
