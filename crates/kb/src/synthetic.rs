//! Deterministic synthetic articles for `tierdesk bench kb`.

use crate::article::{Visibility, slugify};
use crate::demo::demo_articles;
use crate::index::IndexedArticle;
use crate::render::plain_text;

/// A small deterministic generator (SplitMix64), so benches need no `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Skewed towards the start of a list, like word frequencies.
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ACTIONS: &[&str] = &[
    "Reset",
    "Fix",
    "Set up",
    "Troubleshoot",
    "Install",
    "Update",
    "Request",
    "Remove",
    "Configure",
    "Recover",
    "Share",
    "Unlock",
    "Move",
    "Back up",
    "Restore",
];
const SUBJECTS: &[&str] = &[
    "VPN",
    "Outlook",
    "Excel",
    "Teams",
    "OneDrive",
    "printer",
    "password",
    "mailbox",
    "laptop",
    "Wi-Fi",
    "BitLocker",
    "MFA",
    "SharePoint",
    "Zoom",
    "network drive",
    "scanner",
    "calendar",
    "distribution list",
    "Windows Update",
    "Company Portal",
    "dock",
    "monitor",
    "GlobalProtect",
    "WireGuard",
    "Google Workspace",
    "Active Directory",
    "browser",
];
const CONTEXTS: &[&str] = &[
    "on a new laptop",
    "when working from home",
    "for a new employee",
    "after an update",
    "on macOS",
    "on Windows 11",
    "for a shared team",
    "in the office",
    "on a phone",
    "for a client site",
    "after a password change",
    "when it is slow",
];
const HEADINGS: &[&str] = &[
    "Before you start",
    "Steps",
    "If it still fails",
    "Why this happens",
    "Check the basics",
    "For administrators",
    "Related settings",
    "What to send support",
    "Known issues",
];
const CATEGORIES: &[&str] = &[
    "Passwords and sign-in",
    "Email and Outlook",
    "Microsoft 365 and Office",
    "Google Workspace",
    "VPN and remote access",
    "Devices and performance",
    "Printers and peripherals",
    "Software and updates",
    "Accounts and access",
    "Network and Wi-Fi",
    "Security",
];
const FALLBACK_WORDS: &str = "open the settings and select your account then sign in again with \
    the new password restart the computer check the network connection update the driver \
    install the latest version from company portal contact support if the error message stays \
    mailbox calendar folder permission access request approval manager device laptop printer \
    queue scan email outlook excel teams onedrive sync vpn gateway certificate warning browser";

/// Words of the demo knowledge base, most frequent first.
fn vocabulary() -> Vec<String> {
    let mut text = demo_articles()
        .unwrap_or_default()
        .iter()
        .map(|a| plain_text(&a.body))
        .collect::<Vec<_>>()
        .join(" ");
    if text.split_whitespace().count() < 200 {
        text = FALLBACK_WORDS.to_owned();
    }
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for word in text.split(|c: char| !c.is_alphanumeric() && c != '-') {
        let word = word.trim_matches('-').to_lowercase();
        if word.len() >= 2 {
            *counts.entry(word).or_default() += 1;
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(w, _)| w).collect()
}

/// `n` realistic-looking published articles with ids `1..=n`, about 10% internal,
/// the same for the same `seed`.
pub fn synthetic_articles(n: usize, seed: u64) -> impl Iterator<Item = IndexedArticle> {
    let words = vocabulary();
    let mut rng = SplitMix(seed);
    (1..=n).map(move |id| {
        let title = format!(
            "{} {} {}",
            rng.pick(ACTIONS),
            rng.pick(SUBJECTS),
            rng.pick(CONTEXTS)
        );
        let sentence = |rng: &mut SplitMix| {
            let len = 8 + rng.below(14);
            let mut s: String = (0..len)
                .map(|_| words[rng.skewed(words.len())].as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(first) = s.get(..1) {
                let upper = first.to_uppercase();
                s.replace_range(..1, &upper);
            }
            s.push('.');
            s
        };
        let mut body = sentence(&mut rng);
        body.push_str("\n\n");
        for _ in 0..2 + rng.below(3) {
            body.push_str(&format!("## {}\n\n", rng.pick(HEADINGS)));
            for _ in 0..1 + rng.below(3) {
                let paragraph: Vec<String> =
                    (0..2 + rng.below(4)).map(|_| sentence(&mut rng)).collect();
                body.push_str(&paragraph.join(" "));
                body.push_str("\n\n");
            }
        }
        let tags = (0..1 + rng.below(3))
            .map(|_| slugify(rng.pick(SUBJECTS)))
            .collect();
        IndexedArticle {
            id: id as i64,
            slug: format!("{}-{id}", slugify(&title)),
            title,
            category: Some(rng.pick(CATEGORIES).to_owned()),
            tags,
            body,
            visibility: if rng.below(10) == 0 {
                Visibility::Internal
            } else {
                Visibility::Public
            },
            published: true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_with_ids_and_some_internal() {
        let a: Vec<IndexedArticle> = synthetic_articles(200, 7).collect();
        let b: Vec<IndexedArticle> = synthetic_articles(200, 7).collect();
        assert_eq!(a, b);
        assert_eq!(a.first().map(|x| x.id), Some(1));
        assert_eq!(a.last().map(|x| x.id), Some(200));
        let internal = a
            .iter()
            .filter(|x| x.visibility == Visibility::Internal)
            .count();
        assert!((8..=40).contains(&internal), "{internal} internal of 200");
        assert!(a.iter().all(|x| crate::split_passages(&x.body).len() >= 3));
        assert_ne!(a, synthetic_articles(200, 8).collect::<Vec<_>>());
    }
}
