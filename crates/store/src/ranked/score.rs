//! How well a message matches a search: BM25 over the messages being
//! ranked. The index finds the messages; scoring them here costs time in
//! proportion to the few thousand ranked, where asking the index for bm25
//! costs a walk over every match of every word (for its document
//! frequencies), which at a million tickets is most of a search's time.
//! Document frequencies come from the ranked messages themselves: a word
//! most of them contain weighs less than one few contain.

use super::{stem, tokens};

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// One score per text (higher is better) for `terms`, each a word list: a
/// word matches a token that starts with its stem ("printing" counts
/// "printers"), several words count where they stand in a row.
pub fn bm25<'t>(texts: impl Iterator<Item = &'t str>, terms: &[Vec<String>]) -> Vec<f64> {
    let stems: Vec<Vec<String>> = terms.iter().map(|words| stems(words)).collect();
    let docs: Vec<Words> = texts.map(Words::new).collect();
    let counts: Vec<Vec<usize>> = docs
        .iter()
        .map(|doc| stems.iter().map(|s| doc.occurrences(s)).collect())
        .collect();
    let n = docs.len() as f64;
    let average_length = docs.iter().map(Words::len).sum::<usize>() as f64 / n.max(1.0);
    let idf: Vec<f64> = (0..stems.len())
        .map(|i| {
            let df = counts.iter().filter(|c| c[i] > 0).count() as f64;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        })
        .collect();
    docs.iter()
        .zip(&counts)
        .map(|(doc, count)| {
            let norm = K1 * (1.0 - B + B * doc.len() as f64 / average_length.max(1.0));
            count
                .iter()
                .zip(&idf)
                .map(|(&tf, idf)| {
                    let tf = tf as f64;
                    idf * tf * (K1 + 1.0) / (tf + norm)
                })
                .sum()
        })
        .collect()
}

/// The stems a term's words match by (see [`Words::occurrences`]).
pub fn stems(words: &[String]) -> Vec<String> {
    words.iter().map(|w| stem(w)).collect()
}

/// A text lowercased once, with its words' byte ranges found on first
/// need: most fetched messages lack a search's words, which one substring
/// search tells without splitting the text into words.
pub struct Words {
    text: String,
    ranges: std::cell::OnceCell<Vec<std::ops::Range<usize>>>,
}

impl Words {
    pub fn new(text: &str) -> Words {
        Words {
            text: text.to_lowercase(),
            ranges: std::cell::OnceCell::new(),
        }
    }

    fn ranges(&self) -> &[std::ops::Range<usize>] {
        self.ranges.get_or_init(|| tokens(&self.text))
    }

    pub fn len(&self) -> usize {
        self.ranges().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges().is_empty()
    }

    /// Whether `stems` occur in a row, each as a word that starts with it.
    pub fn has(&self, stems: &[String]) -> bool {
        self.occurrences(stems) > 0
    }

    /// How often `stems` occur in a row, each as a word that starts with it.
    fn occurrences(&self, stems: &[String]) -> usize {
        let Some(first) = stems.first() else {
            return 0;
        };
        // Most texts lack the word: one substring search says so.
        if !self.text.contains(first.as_str()) {
            return 0;
        }
        let ranges = self.ranges();
        if ranges.len() < stems.len() {
            return 0;
        }
        ranges
            .windows(stems.len())
            .filter(|run| {
                run.iter()
                    .zip(stems)
                    .all(|(range, stem)| self.text[range.clone()].starts_with(stem.as_str()))
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(words: &[&str]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|w| w.split(' ').map(str::to_string).collect())
            .collect()
    }

    fn order(texts: &[&str], query: &[&str]) -> Vec<usize> {
        let scores = bm25(texts.iter().copied(), &terms(query));
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
        order
    }

    #[test]
    fn more_occurrences_and_shorter_texts_score_higher() {
        let texts = [
            "the printer on floor two is broken and nobody knows why it stopped today",
            "Printer printer: PRINTERS everywhere",
            "printer jam",
        ];
        assert_eq!(order(&texts, &["printing"]), [1, 2, 0]);
    }

    #[test]
    fn rare_words_weigh_more_than_common_ones() {
        let texts = [
            "invoice sent",
            "invoice again",
            "invoice resent",
            "refund please",
        ];
        let scores = bm25(texts.iter().copied(), &terms(&["invoice", "refund"]));
        assert!(scores[3] > scores[0], "{scores:?}");
        assert!((scores[0] - scores[1]).abs() < 1e-9, "{scores:?}");
    }

    #[test]
    fn phrases_count_words_in_a_row_only() {
        let texts = [
            "error 500 on save",
            "500 errors and an error",
            "nothing here",
        ];
        let scores = bm25(texts.iter().copied(), &terms(&["error 500"]));
        assert!(
            scores[0] > 0.0 && scores[1] == 0.0 && scores[2] == 0.0,
            "{scores:?}"
        );
    }

    #[test]
    fn empty_inputs_score_nothing() {
        assert!(bm25(std::iter::empty(), &terms(&["vpn"])).is_empty());
        assert_eq!(bm25(["", "vpn"].into_iter(), &[]), [0.0, 0.0]);
        let scores = bm25(["ä ö ü vpn"].into_iter(), &terms(&["VPN"]));
        assert!(scores[0] > 0.0, "{scores:?}");
    }
}
