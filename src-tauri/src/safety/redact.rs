//! Keys that leak into tool output anyway (a script that prints its environment, a config file
//! the user allowed) are cut out before the log and the model see the text.

use std::borrow::Cow;

/// Values shorter than this are not redacted: they would match ordinary text.
const MIN_SECRET_LEN: usize = 8;

#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// (secret value, what to write in its place), longest first.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// Redacts `api_key` and the values of credential-named variables in `vars`.
    pub fn new(api_key: &str, vars: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut secrets: Vec<(String, String)> = Vec::new();
        let key = api_key.trim();
        if key.len() >= MIN_SECRET_LEN {
            secrets.push((key.to_string(), "[redacted: API key]".to_string()));
        }
        for (name, value) in vars {
            let value = value.trim();
            if value.len() >= MIN_SECRET_LEN
                && super::env::is_secret_name(&name)
                && !secrets.iter().any(|(known, _)| known == value)
            {
                secrets.push((value.to_string(), format!("[redacted: {name}]")));
            }
        }
        secrets.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        Redactor { secrets }
    }

    /// The configured key plus the credentials in this process's environment.
    pub fn for_process(api_key: &str) -> Redactor {
        Redactor::new(api_key, std::env::vars())
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self
            .secrets
            .iter()
            .any(|(value, _)| text.contains(value.as_str()))
        {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for (value, label) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), label);
            }
        }
        Cow::Owned(out)
    }

    /// `text` with every secret replaced, in place (untouched, and not copied, when clean).
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_cut_out() {
        let redactor = Redactor::new(
            "sk-live-123456789",
            [
                ("GITHUB_TOKEN".to_string(), "ghp_abcdefgh".to_string()),
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("SHORT_KEY".to_string(), "abc".to_string()),
            ],
        );
        let text = "key=sk-live-123456789 token=ghp_abcdefgh path=/usr/bin:/bin short=abc";
        assert_eq!(
            redactor.redact(text),
            "key=[redacted: API key] token=[redacted: GITHUB_TOKEN] path=/usr/bin:/bin short=abc"
        );
        assert!(matches!(redactor.redact("nothing here"), Cow::Borrowed(_)));
    }
}
