//! Quantities as people say them: digits, number words in English and German, "a couple",
//! "a dozen", "ein Dutzend".

/// The quantity a run of words starting at `words[0]` states, and how many words it took.
pub fn quantity(words: &[&str]) -> Option<(u32, usize)> {
    let first = *words.first()?;
    if let Ok(n) = first.parse::<u32>() {
        return (1..=999).contains(&n).then_some((n, 1));
    }
    let two = words.get(1).copied().unwrap_or_default();
    let three = words.get(2).copied().unwrap_or_default();
    match (first, two, three) {
        ("half", "a", "dozen") => return Some((6, 3)),
        ("a", "couple", _) | ("ein", "paar", _) => return Some((2, 2)),
        ("a", "few", _) => return Some((3, 2)),
        ("a", "dozen", _) | ("ein", "dutzend", _) => return Some((12, 2)),
        ("a" | "an", _, _) => return Some((1, 1)),
        _ => {}
    }
    let n = match first {
        "one" | "eins" | "ein" | "eine" | "einen" | "einem" | "single" => 1,
        "two" | "zwei" | "pair" => 2,
        "three" | "drei" => 3,
        "four" | "vier" => 4,
        "five" | "funf" => 5,
        "six" | "sechs" => 6,
        "seven" | "sieben" => 7,
        "eight" | "acht" => 8,
        "nine" | "neun" => 9,
        "ten" | "zehn" => 10,
        "eleven" | "elf" => 11,
        "twelve" | "zwolf" | "dozen" | "dutzend" => 12,
        "fifteen" | "funfzehn" => 15,
        "twenty" | "zwanzig" => 20,
        _ => return None,
    };
    Some((n, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_words_and_idioms() {
        let q = |text: &str| {
            let words: Vec<&str> = text.split(' ').collect();
            quantity(&words)
        };
        assert_eq!(q("3 tees"), Some((3, 1)));
        assert_eq!(q("two tees"), Some((2, 1)));
        assert_eq!(q("a couple of tees"), Some((2, 2)));
        assert_eq!(q("half a dozen eggs"), Some((6, 3)));
        assert_eq!(q("ein dutzend eier"), Some((12, 2)));
        assert_eq!(q("zwei shirts"), Some((2, 1)));
        assert_eq!(q("0 tees"), None);
        assert_eq!(q("shirts"), None);
    }
}
