//! Which product an utterance names: every word of every product name (titles and keywords, in
//! both languages) weighed by how distinctive it is in the catalog (a word only one product has
//! says more than "lamp"), matched against the utterance's words by spelling (Jaro-Winkler:
//! plurals, typos of the recogniser) or by sound (a phonetic key: "tee"/"tea", "muesli"/
//! "müsli"). Two products scoring alike are returned together, so the assistant can ask.

use std::collections::HashMap;

use super::fold;

/// A product as the assistant knows it.
#[derive(Debug, Clone)]
pub struct ProductName {
    pub sku: String,
    /// Titles and keywords, any language.
    pub names: Vec<String>,
}

/// What the utterance named.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// One product, with the score.
    One(String),
    /// Several products alike: ask which.
    Ambiguous(Vec<String>),
}

/// Spelling close enough to count.
const CLOSE: f64 = 0.88;
/// Words shorter than this are not matched (articles, "it", "to").
const MIN_LETTERS: usize = 3;
/// A second product within this share of the best is a tie.
const TIE: f64 = 0.9;

/// A crude phonetic key: consonant classes, vowels dropped after the first letter.
pub fn phonetic(word: &str) -> String {
    let word = word
        .replace("ph", "f")
        .replace("sch", "s")
        .replace("ck", "k")
        .replace("th", "t");
    let mut key = String::new();
    for (i, c) in word.chars().enumerate() {
        let mapped = match c {
            'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h' | 'w' if i > 0 => continue,
            'c' | 'k' | 'q' | 'g' => 'k',
            'z' | 's' | 'x' => 's',
            'v' | 'f' => 'f',
            'd' | 't' => 't',
            'b' | 'p' => 'p',
            'm' | 'n' => 'n',
            other => other,
        };
        if !key.ends_with(mapped) {
            key.push(mapped);
        }
    }
    key
}

/// How alike two folded words are, 0..=1. Sounding alike counts only for words also spelled
/// somewhat alike (the key is crude: "place" and "black" share it).
fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let spelled = strsim::jaro_winkler(a, b);
    let sounds = if spelled >= SOUNDS_SPELLED && phonetic(a) == phonetic(b) {
        0.9
    } else {
        0.0
    };
    spelled.max(sounds)
}

/// Spelling similarity below which sounding alike does not count.
const SOUNDS_SPELLED: f64 = 0.75;
/// A match this close in spelling counts even for a small part of a long name.
const NEAR_EXACT: f64 = 0.93;
/// Otherwise the matched words must carry this share of a name's weight.
const COVERAGE: f64 = 0.5;

/// The catalog's words with their weights.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    products: Vec<(String, Vec<Vec<String>>)>,
    weight: HashMap<String, f64>,
}

impl Matcher {
    /// A matcher over `products`.
    pub fn new(products: &[ProductName]) -> Self {
        let products: Vec<(String, Vec<Vec<String>>)> = products
            .iter()
            .map(|p| {
                let names = p
                    .names
                    .iter()
                    .map(|n| {
                        fold(n)
                            .split_whitespace()
                            .filter(|w| w.chars().count() >= MIN_LETTERS)
                            .map(str::to_owned)
                            .collect()
                    })
                    .collect();
                (p.sku.clone(), names)
            })
            .collect();
        let mut holders: HashMap<String, usize> = HashMap::new();
        for (_, names) in &products {
            let mut words: Vec<&String> = names.iter().flatten().collect();
            words.sort();
            words.dedup();
            for word in words {
                *holders.entry(word.clone()).or_default() += 1;
            }
        }
        let n = products.len().max(1) as f64;
        let weight = holders
            .into_iter()
            .map(|(word, count)| (word, (1.0 + n / count as f64).ln()))
            .collect();
        Self { products, weight }
    }

    /// The product `words` (folded) name, if any.
    pub fn find(&self, words: &[&str]) -> Option<Match> {
        let words: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| w.chars().count() >= MIN_LETTERS)
            .collect();
        let mut scored: Vec<(f64, &str)> = self
            .products
            .iter()
            .map(|(sku, names)| {
                let best = names
                    .iter()
                    .map(|name| {
                        let (mut matched, mut total, mut nearest) = (0.0, 0.0, 0.0_f64);
                        for token in name {
                            let weight = self.weight.get(token).copied().unwrap_or(0.0);
                            total += weight;
                            let close = words
                                .iter()
                                .map(|w| similarity(w, token))
                                .fold(0.0, f64::max);
                            if close >= CLOSE {
                                matched += close * weight;
                                nearest = nearest.max(close);
                            }
                        }
                        // A name is named when most of it is said, or a word of it exactly.
                        let said = total > 0.0 && matched / total >= COVERAGE;
                        if said || nearest >= NEAR_EXACT {
                            matched
                        } else {
                            0.0
                        }
                    })
                    .fold(0.0, f64::max);
                (best, sku.as_str())
            })
            .filter(|(score, _)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let (best, sku) = *scored.first()?;
        let tied: Vec<String> = scored
            .iter()
            .take_while(|(score, _)| *score >= best * TIE)
            .map(|(_, sku)| (*sku).to_owned())
            .collect();
        Some(if tied.len() > 1 {
            Match::Ambiguous(tied)
        } else {
            Match::One(sku.to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> Matcher {
        let p = |sku: &str, names: &[&str]| ProductName {
            sku: sku.into(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        Matcher::new(&[
            p(
                "TEE",
                &[
                    "Organic cotton tee",
                    "tee",
                    "t-shirt",
                    "Bio-Baumwoll-T-Shirt",
                ],
            ),
            p(
                "SNKR-BLACK",
                &["Black running sneakers", "Schwarze Laufschuhe"],
            ),
            p(
                "SNKR-WHITE",
                &["White running sneakers", "Weiße Laufschuhe"],
            ),
            p(
                "MUESLI",
                &["Crunchy granola", "muesli", "Knuspermüsli", "Müsli"],
            ),
        ])
    }

    fn find(text: &str) -> Option<Match> {
        let folded = fold(text);
        let words: Vec<&str> = folded.split_whitespace().collect();
        matcher().find(&words)
    }

    #[test]
    fn spelling_sound_and_plurals() {
        assert_eq!(find("two tees"), Some(Match::One("TEE".into())));
        assert_eq!(find("a tea please"), Some(Match::One("TEE".into())));
        assert_eq!(find("zwei Müsli"), Some(Match::One("MUESLI".into())));
        assert_eq!(
            find("the black sneakers"),
            Some(Match::One("SNKR-BLACK".into()))
        );
        assert_eq!(find("nothing here at all"), None);
        assert_eq!(find("place order"), None, "place is not black");
    }

    #[test]
    fn two_alike_are_asked_about() {
        assert_eq!(
            find("sneakers"),
            Some(Match::Ambiguous(vec![
                "SNKR-BLACK".into(),
                "SNKR-WHITE".into()
            ]))
        );
        assert_eq!(phonetic("muesli"), phonetic("musli"));
    }
}
