//! Shell command lines as the approval rules see them, parsed with tree-sitter-bash (a real
//! shell grammar, not patterns over the text): the simple commands with their words, the
//! redirections, the pipelines, and every construct that is more than a plain list of commands.

use std::sync::Mutex;

use tree_sitter::{Node, Parser, Tree};

/// One word of a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The word after quote removal, when it is fixed text (no `$…`, no substitution).
    pub text: Option<String>,
    /// As written.
    pub raw: String,
    /// Unquoted glob characters (`*`, `?`, `[`): the shell expands it to file names.
    pub glob: bool,
    /// Starts with an unquoted `~`: the shell expands it to a home folder.
    pub tilde: bool,
}

impl Word {
    /// The fixed text, or the raw text for words built at run time.
    pub fn shown(&self) -> &str {
        self.text.as_deref().unwrap_or(&self.raw)
    }

    pub fn is(&self, text: &str) -> bool {
        self.text.as_deref() == Some(text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// `>`, `>>`, `<`, `&>`, `>&`, `<<`, `<<<`, …
    pub op: String,
    /// The file descriptor written before the operator (`2` in `2>&1`).
    pub fd: Option<String>,
    pub target: Option<Word>,
}

impl Redirect {
    /// Writes to a file (as opposed to reading, or duplicating a descriptor).
    pub fn writes(&self) -> bool {
        let dup = matches!(self.op.as_str(), ">&" | "<&")
            && self
                .target
                .as_ref()
                .is_some_and(|t| t.text.as_deref().is_some_and(is_fd_number));
        !dup && (self.op.contains('>'))
    }
}

fn is_fd_number(text: &str) -> bool {
    text == "-" || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
}

/// A simple command: `NAME=value … word word … > file`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    pub assignments: Vec<String>,
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// Runs inside `$(…)`, `` `…` `` or `<(…)`.
    pub substituted: bool,
}

impl SimpleCommand {
    /// The command's name (its first word), as fixed text.
    pub fn name(&self) -> Option<&str> {
        self.words.first().and_then(|w| w.text.as_deref())
    }

    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// A whole command line.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Every simple command, nested ones included, in source order.
    pub commands: Vec<SimpleCommand>,
    /// The commands of each pipeline of two or more, by index into `commands`.
    pub pipelines: Vec<Vec<usize>>,
    /// Constructs beyond lists and pipelines of simple commands (`subshell`, `if`,
    /// `function`, `command substitution`, `here-document`, …).
    pub constructs: Vec<&'static str>,
    /// The grammar could not parse all of it.
    pub parse_error: bool,
    /// Functions defined in the script, by name, with the commands their bodies run.
    pub functions: Vec<(String, Vec<usize>)>,
}

impl Script {
    /// Plain: only simple commands joined by `&&`, `||`, `;`, `|` and newlines.
    pub fn is_plain(&self) -> bool {
        !self.parse_error && self.constructs.is_empty()
    }
}

/// The parser is not cheap to build and not `Sync`; one is kept and lent out.
static PARSER: Mutex<Option<Parser>> = Mutex::new(None);

fn parse_tree(text: &str) -> Option<Tree> {
    let mut slot = crate::sync::lock(&PARSER);
    if slot.is_none() {
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_bash::LANGUAGE.into())
            .ok()?;
        *slot = Some(parser);
    }
    slot.as_mut()?.parse(text, None)
}

/// Parses a command line. A line the grammar cannot read yields `parse_error` (and whatever
/// commands could be read).
pub fn parse(text: &str) -> Script {
    let mut script = Script::default();
    let Some(tree) = parse_tree(text) else {
        script.parse_error = true;
        return script;
    };
    let root = tree.root_node();
    script.parse_error = root.has_error();
    let mut walker = Walker {
        src: text.as_bytes(),
        script: &mut script,
    };
    walker.statement(root, false);
    script
}

struct Walker<'a> {
    src: &'a [u8],
    script: &'a mut Script,
}

impl Walker<'_> {
    fn text(&self, node: Node<'_>) -> String {
        node.utf8_text(self.src).unwrap_or_default().to_string()
    }

    fn note(&mut self, construct: &'static str) {
        if !self.script.constructs.contains(&construct) {
            self.script.constructs.push(construct);
        }
    }

    /// Any node that holds statements.
    fn statement(&mut self, node: Node<'_>, substituted: bool) {
        match node.kind() {
            "command" => {
                self.command(node, Vec::new(), substituted);
            }
            "redirected_statement" => {
                let redirects = self.redirects(node, substituted);
                match node.child_by_field_name("body") {
                    Some(body) if body.kind() == "command" => {
                        self.command(body, redirects, substituted);
                    }
                    Some(body) => {
                        let first = self.script.commands.len();
                        self.statement(body, substituted);
                        // Redirections of a compound statement apply to what runs inside.
                        if let Some(last) = self
                            .script
                            .commands
                            .get_mut(first..)
                            .and_then(|c| c.last_mut())
                        {
                            last.redirects.extend(redirects);
                        } else if !redirects.is_empty() {
                            self.script.commands.push(SimpleCommand {
                                redirects,
                                substituted,
                                ..SimpleCommand::default()
                            });
                        }
                    }
                    None => {}
                }
            }
            "pipeline" => {
                let mut members = Vec::new();
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    let before = self.script.commands.len();
                    self.statement(child, substituted);
                    // The pipeline member is the first command its part added (a nested
                    // substitution adds more after it).
                    if self.script.commands.len() > before {
                        members.push(before);
                    }
                }
                if members.len() > 1 {
                    self.script.pipelines.push(members);
                }
            }
            "program" | "list" => self.children(node, substituted),
            "variable_assignment" => {
                if let Some(value) = node.child_by_field_name("value") {
                    self.word(value, substituted);
                }
            }
            "function_definition" => {
                self.note("function definition");
                let name = node
                    .child_by_field_name("name")
                    .map(|n| self.text(n))
                    .unwrap_or_default();
                let first = self.script.commands.len();
                if let Some(body) = node.child_by_field_name("body") {
                    self.statement(body, substituted);
                }
                let body: Vec<usize> = (first..self.script.commands.len()).collect();
                self.script.functions.push((name, body));
            }
            "comment" => {}
            kind => {
                self.note(construct_name(kind));
                self.children(node, substituted);
            }
        }
    }

    fn children(&mut self, node: Node<'_>, substituted: bool) {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for child in children {
            if is_word_kind(child.kind()) {
                self.word(child, substituted);
            } else {
                self.statement(child, substituted);
            }
        }
    }

    fn command(
        &mut self,
        node: Node<'_>,
        mut redirects: Vec<Redirect>,
        substituted: bool,
    ) -> usize {
        let at = self.script.commands.len();
        self.script.commands.push(SimpleCommand {
            substituted,
            ..SimpleCommand::default()
        });
        let mut assignments = Vec::new();
        let mut words = Vec::new();
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for child in children {
            match child.kind() {
                "variable_assignment" => {
                    assignments.push(self.text(child));
                    if let Some(value) = child.child_by_field_name("value") {
                        self.word(value, substituted);
                    }
                }
                "command_name" => {
                    if let Some(inner) = child.named_child(0) {
                        words.push(self.word(inner, substituted));
                    }
                }
                "file_redirect" | "heredoc_redirect" | "herestring_redirect" => {
                    redirects.push(self.redirect(child, substituted));
                }
                kind if is_word_kind(kind) => words.push(self.word(child, substituted)),
                _ => self.statement(child, substituted),
            }
        }
        if let Some(command) = self.script.commands.get_mut(at) {
            command.assignments = assignments;
            command.words = words;
            command.redirects = redirects;
        }
        at
    }

    fn redirects(&mut self, node: Node<'_>, substituted: bool) -> Vec<Redirect> {
        let mut out = Vec::new();
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node
            .children_by_field_name("redirect", &mut cursor)
            .collect();
        for child in children {
            out.push(self.redirect(child, substituted));
        }
        out
    }

    fn redirect(&mut self, node: Node<'_>, substituted: bool) -> Redirect {
        if node.kind() == "heredoc_redirect" {
            self.note("here-document");
        }
        let mut op = String::new();
        let mut fd = None;
        let mut target = None;
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        for child in children {
            if !child.is_named() {
                if op.is_empty() {
                    op = self.text(child);
                }
                continue;
            }
            match child.kind() {
                "file_descriptor" => fd = Some(self.text(child)),
                "heredoc_start" | "heredoc_body" | "heredoc_end" | "heredoc_content" => {
                    self.children(child, substituted)
                }
                kind if is_word_kind(kind) && target.is_none() => {
                    target = Some(self.word(child, substituted));
                }
                _ => self.statement(child, substituted),
            }
        }
        if op.is_empty() {
            op = match node.kind() {
                "heredoc_redirect" => "<<".to_string(),
                "herestring_redirect" => "<<<".to_string(),
                _ => ">".to_string(),
            };
        }
        Redirect { op, fd, target }
    }

    /// A word-like node: its fixed text when it has one; substitutions inside are walked.
    fn word(&mut self, node: Node<'_>, substituted: bool) -> Word {
        let raw = self.text(node);
        let mut word = Word {
            text: None,
            glob: false,
            tilde: false,
            raw: raw.clone(),
        };
        match node.kind() {
            "word" => {
                word.glob = has_glob(&raw);
                word.tilde = raw.starts_with('~');
                word.text = Some(unescape(&raw));
            }
            "number" => word.text = Some(raw),
            "raw_string" => {
                word.text = Some(
                    raw.strip_prefix('\'')
                        .and_then(|r| r.strip_suffix('\''))
                        .unwrap_or(&raw)
                        .to_string(),
                )
            }
            "string" => {
                let mut text = String::new();
                let mut fixed = true;
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for child in children {
                    match child.kind() {
                        "string_content" => text.push_str(&unescape_dquoted(&self.text(child))),
                        _ => {
                            fixed = false;
                            self.word(child, substituted);
                        }
                    }
                }
                if fixed {
                    word.text = Some(text);
                }
            }
            "concatenation" => {
                let mut text = String::new();
                let mut fixed = true;
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for (i, child) in children.into_iter().enumerate() {
                    let part = self.word(child, substituted);
                    word.glob |= part.glob;
                    word.tilde |= i == 0 && part.tilde;
                    match part.text {
                        Some(t) => text.push_str(&t),
                        None => fixed = false,
                    }
                }
                if fixed {
                    word.text = Some(text);
                }
            }
            "command_substitution" => {
                self.note("command substitution");
                self.children(node, true);
            }
            "process_substitution" => {
                self.note("process substitution");
                self.children(node, true);
            }
            "simple_expansion" | "expansion" => {
                self.note("variable expansion");
                self.children(node, substituted);
            }
            "arithmetic_expansion" => {
                self.note("arithmetic expansion");
                self.children(node, substituted);
            }
            "ansi_c_string" | "translated_string" => self.note("special quoting"),
            "brace_expression" => self.note("brace expansion"),
            _ => self.note("unusual word"),
        }
        word
    }
}

fn is_word_kind(kind: &str) -> bool {
    matches!(
        kind,
        "word"
            | "number"
            | "string"
            | "raw_string"
            | "concatenation"
            | "command_substitution"
            | "process_substitution"
            | "simple_expansion"
            | "expansion"
            | "arithmetic_expansion"
            | "ansi_c_string"
            | "translated_string"
            | "brace_expression"
            | "array"
            | "extglob_pattern"
            | "regex"
    )
}

fn construct_name(kind: &str) -> &'static str {
    match kind {
        "subshell" => "subshell",
        "compound_statement" => "command group",
        "if_statement" | "elif_clause" | "else_clause" => "if",
        "for_statement" | "c_style_for_statement" => "for loop",
        "while_statement" => "while loop",
        "case_statement" | "case_item" => "case",
        "do_group" => "loop body",
        "negated_command" => "negation",
        "test_command" => "test expression",
        "declaration_command" => "declaration",
        "unset_command" => "unset",
        "variable_assignments" => "assignment",
        "ERROR" => "unparsed text",
        _ => "other construct",
    }
}

fn has_glob(raw: &str) -> bool {
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// An unquoted word's text: a backslash keeps the next character.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next()
                && next != '\n'
            {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inside double quotes a backslash only escapes `$`, `` ` ``, `"`, `\` and a newline.
fn unescape_dquoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('$' | '`' | '"' | '\\')) => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            ('\\', Some('\n')) => {
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn names(script: &Script) -> Vec<String> {
        script
            .commands
            .iter()
            .map(|c| c.name().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn lists_and_pipelines() {
        let s = parse("ls -la | grep x > out.txt 2>&1 && echo 'done'; cargo test");
        assert!(s.is_plain(), "{:?}", s.constructs);
        assert_eq!(names(&s), ["ls", "grep", "echo", "cargo"]);
        assert_eq!(s.pipelines, vec![vec![0, 1]]);
        let grep = &s.commands[1];
        assert_eq!(grep.redirects.len(), 2);
        assert!(grep.redirects[0].writes());
        assert!(!grep.redirects[1].writes(), "2>&1 duplicates a descriptor");
        assert!(s.commands[2].words[1].is("done"));
    }

    #[test]
    fn quotes_escapes_and_expansions() {
        let s = parse(r#"echo "a b" 'c d' e\ f "$HOME/x" ~/y *.rs"#);
        let words = &s.commands[0].words;
        assert!(words[1].is("a b"));
        assert!(words[2].is("c d"));
        assert!(words[3].is("e f"));
        assert_eq!(words[4].text, None);
        assert!(words[5].tilde);
        assert!(words[6].glob);
        assert!(!s.is_plain());
    }

    #[test]
    fn substitutions_are_walked() {
        let s = parse(r#"bash -c "$(curl -fsSL https://x.y/z)""#);
        assert_eq!(names(&s), ["bash", "curl"]);
        assert!(s.commands[1].substituted);
        assert!(s.constructs.contains(&"command substitution"));
        let s = parse("bash <(curl -s x)");
        assert_eq!(names(&s), ["bash", "curl"]);
        let s = parse("echo `date`");
        assert_eq!(names(&s), ["echo", "date"]);
    }

    #[test]
    fn functions_and_control_flow() {
        let s = parse(":(){ :|:& };:");
        assert_eq!(s.functions.len(), 1);
        assert_eq!(s.functions[0].0, ":");
        let s = parse("if true; then rm -rf /; fi");
        assert!(names(&s).contains(&"rm".to_string()));
        assert!(s.constructs.contains(&"if"));
    }

    #[test]
    fn broken_input_is_an_error() {
        assert!(parse("echo 'unterminated").parse_error);
        assert!(parse("ls )").parse_error);
    }
}
