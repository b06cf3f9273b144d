//! The system prompt: short, names the working folder, and asks for the todo tool on
//! multi-step work.

use std::path::Path;

pub fn system_prompt(workdir: &Path) -> String {
    format!(
        "You are Talaria, a careful coding and automation agent working on the user's machine.\n\
         Working folder: {workdir}\n\
         All file paths are relative to the working folder; tools refuse paths outside it. \
         The `terminal` tool runs shell commands in the working folder.\n\
         For any task with more than two steps, first write a plan with the `todo` tool, keep \
         exactly one item `in_progress`, and mark items `completed` as you finish them.\n\
         Read files before changing them; prefer `patch` for small edits. If a tool returns an \
         error, read it and adjust instead of repeating the same call.\n\
         When you are done, answer briefly: what you did and anything the user must do next.",
        workdir = workdir.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_workdir_and_todo() {
        let text = system_prompt(Path::new("/tmp/project"));
        assert!(text.contains("/tmp/project"));
        assert!(text.contains("`todo`"));
    }
}
