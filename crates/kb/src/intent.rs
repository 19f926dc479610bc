//! What kind of passage a question asks for: "how do I…" wants the steps,
//! "why does…" the explanation. Used to order an article's passages, never to
//! choose between articles.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// A procedure: "how do I…", "steps to…".
    HowTo,
    /// A cause: "why does…".
    Why,
    Other,
}

/// After "how", these ask for a quantity or a time, not a procedure.
const NOT_A_PROCEDURE: &[&str] = &[
    "long", "much", "many", "often", "quickly", "soon", "come", "far", "big", "fast",
];

impl Intent {
    pub(crate) fn of(question: &str) -> Intent {
        let words: Vec<String> = question
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        for (i, word) in words.iter().enumerate() {
            match word.as_str() {
                "how" => {
                    let next = words.get(i + 1).map(String::as_str).unwrap_or("");
                    if !NOT_A_PROCEDURE.contains(&next) {
                        return Intent::HowTo;
                    }
                }
                "steps" | "instructions" => return Intent::HowTo,
                "why" => return Intent::Why,
                _ => {}
            }
        }
        Intent::Other
    }

    /// Whether a passage (its heading and plain text) is of the kind asked for.
    pub(crate) fn fits(self, heading: Option<&str>, text: &str) -> bool {
        match self {
            Intent::HowTo => is_procedure(text),
            Intent::Why => heading.is_some_and(|h| {
                h.split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("why"))
            }),
            Intent::Other => false,
        }
    }
}

/// At least two numbered steps ("1. Open…", "2) Click…").
pub(crate) fn is_procedure(text: &str) -> bool {
    text.lines().filter(|line| is_numbered_step(line)).count() >= 2
}

fn is_numbered_step(line: &str) -> bool {
    let line = line.trim_start();
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (1..=2).contains(&digits)
        && line[digits..].starts_with(['.', ')'])
        && line[digits + 1..].starts_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_how_to_and_why_questions() {
        for q in [
            "How do I reset my VPN password?",
            "forgot vpn pasword how reset",
            "what are the steps to map a drive",
        ] {
            assert_eq!(Intent::of(q), Intent::HowTo, "{q}");
        }
        for q in [
            "how long does a software request take",
            "How many days before the start date?",
            "vpn keeps dropping",
        ] {
            assert_eq!(Intent::of(q), Intent::Other, "{q}");
        }
        assert_eq!(
            Intent::of("Why does Outlook ask for my password?"),
            Intent::Why
        );
    }

    #[test]
    fn numbered_steps_make_a_procedure() {
        assert!(is_procedure("Intro.\n1. Open the portal.\n2. Click Reset."));
        assert!(is_procedure("1) Open\n2) Click"));
        assert!(!is_procedure("1. Only one step."));
        assert!(!is_procedure("In 2024. We moved.\nCall 555 0100."));
        assert!(!is_procedure("10.5 GB free\n20.1 GB used"));
        assert!(Intent::Why.fits(Some("Why Outlook keeps asking"), ""));
        assert!(!Intent::Why.fits(Some("Steps"), "1. a\n2. b"));
        assert!(Intent::HowTo.fits(Some("Steps"), "1. a\n2. b"));
    }
}
