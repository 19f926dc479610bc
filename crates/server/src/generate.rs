//! An optional generative answer on top of the extractive bot: the passages
//! it retrieved go to an OpenAI-compatible chat-completions endpoint, which
//! is told to answer from them alone and cite them as `[1]`, `[2]`. Off by
//! default. Anything that is not a usable, cited answer in time (network
//! error, HTTP error, timeout, an answer citing nothing or a passage that was
//! not given, "NO_ANSWER") is an error, and the caller keeps the extractive
//! answer.

use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::time::Duration;

/// Where and how to ask; `url` is the API base, e.g. `http://127.0.0.1:8000/v1`.
#[derive(Clone, PartialEq, Eq)]
pub struct GenerativeConfig {
    pub url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl fmt::Debug for GenerativeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerativeConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the model endpoint did not answer in time")]
    Timeout,
    #[error("the model endpoint: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the model endpoint answered {0}")]
    Status(u16),
    #[error("the model gave no usable answer: {0}")]
    Unusable(&'static str),
}

/// One retrieved passage, as the model sees it.
pub struct Source<'a> {
    pub title: &'a str,
    pub heading: Option<&'a str>,
    pub text: &'a str,
}

const SYSTEM: &str = "You are a help desk's answer bot. Answer the customer's question using \
only the numbered passages from the knowledge base below, in a few short sentences. Cite every \
statement with the passage number in brackets, like [1]. Do not add anything the passages do not \
say. If the passages do not answer the question, reply with exactly NO_ANSWER.";

#[derive(Debug)]
pub struct Generator {
    http: reqwest::Client,
    config: GenerativeConfig,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

impl Generator {
    pub fn new(config: GenerativeConfig) -> Self {
        Self {
            http: reqwest::Client::new(),
            config,
        }
    }

    /// The model's answer, grounded in `sources` and citing them.
    pub async fn answer(
        &self,
        question: &str,
        sources: &[Source<'_>],
    ) -> Result<String, GenerateError> {
        tokio::time::timeout(self.config.timeout, self.ask(question, sources))
            .await
            .map_err(|_| GenerateError::Timeout)?
    }

    async fn ask(&self, question: &str, sources: &[Source<'_>]) -> Result<String, GenerateError> {
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": SYSTEM },
                { "role": "user", "content": prompt(question, sources) },
            ],
        });
        let url = format!("{}/chat/completions", self.config.url.trim_end_matches('/'));
        let mut request = self.http.post(url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(GenerateError::Status(response.status().as_u16()));
        }
        let completion: Completion = response.json().await?;
        let text = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .unwrap_or_default();
        checked(text.trim(), sources.len()).map(str::to_string)
    }
}

/// The question and the numbered passages.
pub fn prompt(question: &str, sources: &[Source<'_>]) -> String {
    let mut text = String::from("Passages:\n");
    for (i, s) in sources.iter().enumerate() {
        let heading = s.heading.map(|h| format!(" — {h}")).unwrap_or_default();
        text.push_str(&format!("\n[{}] {}{heading}\n{}\n", i + 1, s.title, s.text));
    }
    text.push_str(&format!("\nQuestion: {question}"));
    text
}

/// A usable answer: not empty, not a refusal, citing only given passages and at least one.
fn checked(text: &str, sources: usize) -> Result<&str, GenerateError> {
    if text.is_empty() || text.contains("NO_ANSWER") {
        return Err(GenerateError::Unusable("no answer"));
    }
    let mut cited = 0;
    for piece in text.split('[').skip(1) {
        let Some((number, _)) = piece.split_once(']') else {
            continue;
        };
        match number.trim().parse::<usize>() {
            Ok(n) if (1..=sources).contains(&n) => cited += 1,
            Ok(_) => return Err(GenerateError::Unusable("cites a passage it was not given")),
            Err(_) => {}
        }
    }
    if cited == 0 {
        return Err(GenerateError::Unusable("cites no passage"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cited_answers_from_given_passages_are_used() {
        assert!(checked("Open the reset page [1], then wait [2].", 2).is_ok());
        assert!(checked("Open the reset page.", 2).is_err(), "no citation");
        assert!(checked("See [3].", 2).is_err(), "a passage not given");
        assert!(checked("NO_ANSWER", 2).is_err());
        assert!(checked("", 2).is_err());
        assert!(checked("Use [the portal] as in [1].", 1).is_ok());
    }

    #[test]
    fn the_prompt_numbers_the_passages() {
        let sources = [
            Source {
                title: "Reset your VPN password",
                heading: Some("Steps"),
                text: "Open the page.",
            },
            Source {
                title: "WireGuard",
                heading: None,
                text: "Keys, not passwords.",
            },
        ];
        let p = prompt("how do I reset it?", &sources);
        assert!(
            p.contains("[1] Reset your VPN password — Steps\nOpen the page."),
            "{p}"
        );
        assert!(p.contains("[2] WireGuard\nKeys, not passwords."), "{p}");
        assert!(p.ends_with("Question: how do I reset it?"));
    }
}
