//! The labelled utterances the NLU is measured on (`data/utterances.tsv`), and the catalog
//! they speak of.

use crate::nlu::matching::ProductName;

/// One labelled utterance.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub locale: String,
    pub text: String,
    pub intent: String,
    /// Expected slots, `key=value` (sku, qty, method, window); empty: none expected.
    pub slots: Vec<(String, String)>,
    /// Below the `# held-out:` line: written after the rules were tuned, never tuned on.
    pub held_out: bool,
}

/// The set, as checked in.
pub const UTTERANCES: &str = include_str!("../data/utterances.tsv");

/// Reads the TSV: `locale<TAB>text<TAB>intent<TAB>slots` (`#` lines are comments).
pub fn utterances() -> Vec<Labelled> {
    let mut held_out = false;
    let mut set = Vec::new();
    for line in UTTERANCES.lines() {
        if line.starts_with("# held-out:") {
            held_out = true;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(locale), Some(text), Some(intent)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let slots = cols
            .next()
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect();
        set.push(Labelled {
            locale: locale.trim().to_owned(),
            text: text.trim().to_owned(),
            intent: intent.trim().to_owned(),
            slots,
            held_out,
        });
    }
    set
}

/// The catalog the set speaks of (the sample world's, with two sneakers and two lamps to
/// tell apart).
pub fn catalog() -> Vec<ProductName> {
    let p = |sku: &str, names: &[&str]| ProductName {
        sku: sku.into(),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
    };
    vec![
        p(
            "TEE",
            &[
                "Organic cotton tee",
                "tee",
                "t-shirt",
                "shirt",
                "Bio-Baumwoll-T-Shirt",
            ],
        ),
        p(
            "SNKR-BLACK",
            &[
                "Black running sneakers",
                "black trainers",
                "black running shoes",
                "Schwarze Laufschuhe",
                "schwarze Turnschuhe",
            ],
        ),
        p(
            "SNKR-WHITE",
            &[
                "White running sneakers",
                "white trainers",
                "white running shoes",
                "Weiße Laufschuhe",
                "weiße Turnschuhe",
            ],
        ),
        p(
            "LAMP-FLOOR",
            &["Floor lamp", "standing lamp", "Stehleuchte", "Stehlampe"],
        ),
        p("LAMP-DESK", &["Desk lamp", "Schreibtischlampe"]),
        p(
            "CHAIR",
            &["Oak dining chair", "chair", "Esszimmerstuhl", "Stuhl"],
        ),
        p("CLOCK", &["Wall clock", "Wanduhr"]),
        p(
            "WATCH",
            &[
                "Automatic watch",
                "wristwatch",
                "Automatikuhr",
                "Armbanduhr",
            ],
        ),
        p(
            "MUESLI",
            &[
                "Crunchy granola",
                "muesli",
                "cereal",
                "Knuspermüsli",
                "Müsli",
            ],
        ),
        p(
            "KETTLE",
            &["Electric kettle", "water boiler", "Wasserkocher"],
        ),
        p("MILK", &["Oat milk", "Haferdrink", "Hafermilch"]),
        p(
            "COFFEE",
            &["Coffee beans", "coffee", "Kaffeebohnen", "Kaffee"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::{self, matching::Matcher};

    #[test]
    fn the_set_is_large_and_bilingual_and_the_nlu_holds_its_bar() {
        let set = utterances();
        assert!(set.len() >= 300, "{} utterances", set.len());
        assert!(set.iter().filter(|u| u.locale == "de").count() >= 100);
        let matcher = Matcher::new(&catalog());
        let right = set
            .iter()
            .filter(|u| nlu::understand(&u.text, &matcher).intent.name() == u.intent)
            .count();
        let accuracy = right as f64 / set.len() as f64;
        assert!(accuracy >= 0.95, "intent accuracy {accuracy:.3}");
    }
}
