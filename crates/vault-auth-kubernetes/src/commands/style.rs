//! Terminal niceties kept apart from the commands' logic: colour (only on a terminal, never with
//! `NO_COLOR`) and the yes/no confirmation of `cleanup`.

use std::ffi::OsStr;
use std::io::{BufRead, IsTerminal, Write};

/// Whether to colour output: only when it goes to a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn use_color(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Colours for stdout, decided from the process's stdout and environment.
pub fn stdout_style() -> Style {
    Style {
        color: use_color(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ),
    }
}

/// ANSI colours, or plain text when `color` is false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Something to be created.
    pub fn added(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Something to be changed.
    pub fn changed(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Something to be removed, or an error.
    pub fn removed(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// A heading.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Secondary information.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Asks `question` on `prompt` and reads one line from `input`: true only for `y` or `yes`
/// (any case). End of input is a no.
pub fn confirm(question: &str, input: &mut impl BufRead, prompt: &mut impl Write) -> bool {
    if write!(prompt, "{question} [y/N] ")
        .and_then(|()| prompt.flush())
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    match input.read_line(&mut answer) {
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_color(true, None));
        assert!(use_color(true, Some(OsStr::new(""))));
        assert!(!use_color(true, Some(OsStr::new("1"))));
        assert!(!use_color(false, None));
    }

    #[test]
    fn plain_style_adds_no_escape_codes() {
        let plain = Style { color: false };
        assert_eq!(plain.added("+ x"), "+ x");
        let colored = Style { color: true };
        assert_eq!(colored.removed("- x"), "\x1b[31m- x\x1b[0m");
    }

    #[test]
    fn confirm_takes_only_yes() {
        for (answer, want) in [
            ("yes\n", true),
            ("Y\n", true),
            (" y \n", true),
            ("no\n", false),
            ("\n", false),
            ("", false),
            ("yess\n", false),
        ] {
            let mut prompt = Vec::new();
            let got = confirm("Remove?", &mut answer.as_bytes(), &mut prompt);
            assert_eq!(got, want, "{answer:?}");
            assert_eq!(String::from_utf8(prompt).unwrap(), "Remove? [y/N] ");
        }
    }
}
