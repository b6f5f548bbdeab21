//! The language understanding: an utterance (English or German, as people talk: fillers,
//! corrections) → the intent and its slots. Deterministic rules over folded words plus fuzzy
//! product matching; no network, no model files, and total — any text gets an answer
//! (`Unknown` at worst).

pub mod matching;
pub mod numbers;

use matching::{Match, Matcher};

/// What the buyer wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    AddItem,
    RemoveItem,
    SetQuantity,
    SetDelivery,
    PlaceOrder,
    CancelOrder,
    CancelLine,
    WhereIsOrder,
    Reorder,
    ShowCart,
    Undo,
    Yes,
    No,
    Repeat,
    Unknown,
}

impl Intent {
    /// The name used in the labelled set.
    pub fn name(self) -> &'static str {
        match self {
            Intent::AddItem => "add_item",
            Intent::RemoveItem => "remove_item",
            Intent::SetQuantity => "set_quantity",
            Intent::SetDelivery => "set_delivery",
            Intent::PlaceOrder => "place_order",
            Intent::CancelOrder => "cancel_order",
            Intent::CancelLine => "cancel_line",
            Intent::WhereIsOrder => "where_is_order",
            Intent::Reorder => "reorder",
            Intent::ShowCart => "show_cart",
            Intent::Undo => "undo",
            Intent::Yes => "yes",
            Intent::No => "no",
            Intent::Repeat => "repeat",
            Intent::Unknown => "unknown",
        }
    }
}

/// A delivery method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Standard,
    Express,
    SameDay,
}

/// When the buyer wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Tomorrow,
    /// 0 = Monday.
    OnWeekday(u8),
    /// Before this hour (0–23) of the delivery day.
    BeforeHour(u8),
}

/// The details of an utterance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slots {
    pub product: Option<Match>,
    pub quantity: Option<u32>,
    pub method: Option<Method>,
    pub window: Option<Window>,
}

/// An utterance understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    pub intent: Intent,
    pub slots: Slots,
    /// 0..=1: how sure the rules are (an exact phrase is surer than a product alone).
    pub confidence: f64,
}

/// Longest utterance looked at (a longer one is cut, not refused).
const MAX_CHARS: usize = 500;

/// Lower case, German letters folded (ä → a, ß → ss), anything but letters and digits a space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(MAX_CHARS).flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push('a'),
            'ö' => out.push('o'),
            'ü' => out.push('u'),
            'ß' => out.push_str("ss"),
            '\'' | '’' => {}
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    out
}

/// Words that carry nothing.
const FILLERS: &[&str] = &[
    "uh",
    "um",
    "uhm",
    "erm",
    "er",
    "hmm",
    "ah",
    "oh",
    "ahm",
    "ahem",
    "ehm",
    "please",
    "bitte",
    "hey",
    "hi",
    "hallo",
    "well",
    "like",
    "so",
    "also",
    "mal",
    "just",
    "nur",
    "halt",
    "eben",
    "thanks",
    "danke",
    "assistant",
];

fn has(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| contains_phrase(text, p))
}

/// Whether `phrase` occurs in `text` on word boundaries (`text` is folded and padded).
fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.contains(&format!(" {phrase} "))
}

/// The whole utterance is one of `phrases`.
fn is(text: &str, phrases: &[&str]) -> bool {
    let bare = text.trim();
    phrases.contains(&bare)
}

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "correct",
    "right",
    "do it",
    "go ahead",
    "yep do it",
    "yeah do it",
    "ok do it",
    "ja mach das",
    "ja bitte",
    "yes go ahead",
    "yes please",
    "yes do it",
    "confirm",
    "sounds good",
    "perfect",
    "ja",
    "jawohl",
    "genau",
    "ja genau",
    "richtig",
    "passt",
    "mach das",
    "mach es",
    "ja mach",
    "ja bestellen",
    "ja gerne",
    "gerne",
    "stimmt",
    "okay mach",
    "absolutely",
    "of course",
    "klar",
    "na klar",
    "yes confirm",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "no thanks",
    "not now",
    "dont",
    "dont do it",
    "stop",
    "nein",
    "no no",
    "nee",
    "lieber nicht",
    "nicht jetzt",
    "auf keinen fall",
    "no way",
    "nein danke",
    "never mind",
];
const REPEAT: &[&str] = &[
    "repeat",
    "repeat that",
    "say that again",
    "what",
    "pardon",
    "sorry",
    "come again",
    "again please",
    "wie bitte",
    "wie",
    "nochmal",
    "noch mal",
    "wiederholen",
    "was",
    "what did you say",
];
const UNDO: &[&str] = &[
    "undo",
    "undo that",
    "go back",
    "take that back",
    "revert",
    "ruckgangig",
    "zuruck",
    "mach das ruckgangig",
    "das ruckgangig",
    "scratch that",
];

/// Parses one utterance against the catalog `matcher`.
pub fn understand(text: &str, matcher: &Matcher) -> Interpretation {
    let folded = fold(text);
    let words: Vec<&str> = folded
        .split_whitespace()
        .filter(|w| !FILLERS.contains(w))
        .collect();
    let clean = words.join(" ");
    let padded = format!(" {clean} ");
    let sure = |intent, slots| Interpretation {
        intent,
        slots,
        confidence: 0.95,
    };
    if clean.is_empty() {
        return Interpretation {
            intent: Intent::Unknown,
            slots: Slots::default(),
            confidence: 0.0,
        };
    }
    if is(&clean, YES) {
        return sure(Intent::Yes, Slots::default());
    }
    if is(&clean, NO) {
        return sure(Intent::No, Slots::default());
    }
    if is(&clean, REPEAT) {
        return sure(Intent::Repeat, Slots::default());
    }
    if is(&clean, UNDO) || has(&padded, &["undo", "ruckgangig", "scratch that"]) {
        return sure(Intent::Undo, Slots::default());
    }

    let (window, without_times) = window(&padded);
    let method = method(&padded);
    let content: Vec<&str> = without_times
        .split_whitespace()
        .filter(|w| !STOP.contains(w))
        .collect();
    let product = matcher.find(&content);
    let quantity = last_quantity(&without_times);
    let slots = Slots {
        product: product.clone(),
        quantity,
        method,
        window,
    };

    if has(
        &padded,
        &[
            "where is my order",
            "where is my package",
            "where is my parcel",
            "wheres my order",
            "where is it",
            "wheres my package",
            "wheres my parcel",
            "wheres it",
            "when will it arrive",
            "when does it arrive",
            "when will my order",
            "when is it coming",
            "track my order",
            "tracking",
            "wo ist meine bestellung",
            "wo ist mein paket",
            "wann kommt",
            "wann wird",
            "wo bleibt",
            "sendungsverfolgung",
            "status of my order",
            "status meiner bestellung",
            "is my order",
            "ist meine bestellung",
            "arrive",
            "ankommen",
            "kommt meine",
            "how long until",
        ],
    ) {
        return sure(Intent::WhereIsOrder, slots);
    }
    if is(&clean, &["my cart", "cart", "mein warenkorb", "warenkorb"])
        || has(
            &padded,
            &[
                "whats in my cart",
                "what is in my cart",
                "show my cart",
                "show cart",
                "read my cart",
                "what do i have",
                "what have i got",
                "was ist im warenkorb",
                "was ist in meinem warenkorb",
                "warenkorb zeigen",
                "zeig mir den warenkorb",
                "was habe ich",
                "whats in the cart",
                "what is in the cart",
                "was liegt im warenkorb",
                "list my cart",
            ],
        )
    {
        return sure(Intent::ShowCart, slots);
    }
    if has(
        &padded,
        &[
            "reorder",
            "order again",
            "same as last time",
            "my last order again",
            "repeat my last order",
            "repeat the last order",
            "nochmal bestellen",
            "noch einmal bestellen",
            "wie letztes mal",
            "wie letztes",
            "wie beim letzten mal",
            "wie beim letzten",
            "die letzte bestellung nochmal",
            "letzte bestellung wiederholen",
            "buy again",
            "same order again",
            "erneut bestellen",
        ],
    ) {
        return sure(Intent::Reorder, slots);
    }
    if has(
        &padded,
        &[
            "cancel",
            "storniere",
            "stornieren",
            "storno",
            "abbestellen",
            "bestell ab",
            "stornier",
        ],
    ) {
        let intent = if product.is_some() {
            Intent::CancelLine
        } else {
            Intent::CancelOrder
        };
        return sure(intent, slots);
    }
    if has(
        &padded,
        &[
            "remove",
            "delete",
            "take out",
            "take off",
            "drop the",
            "get rid of",
            "without the",
            "no more",
            "entferne",
            "entfernen",
            "losche",
            "loschen",
            "raus",
            "weg damit",
            "nimm die",
            "nimm den",
            "nimm das",
            "streiche",
            "streich",
        ],
    ) && !has(&padded, &["nimm mir", "nimm noch"])
        || (contains_phrase(&padded, "take") && contains_phrase(&padded, "out"))
    {
        return sure(Intent::RemoveItem, slots);
    }
    let correction = has(
        &padded,
        &[
            "make that",
            "make it",
            "change that to",
            "change it to",
            "change to",
            "actually",
            "instead",
            "mach daraus",
            "mach das",
            "doch lieber",
            "lieber",
            "stattdessen",
            "andere auf",
            "auf",
            "only",
            "just one",
            "nur einen",
            "nur eine",
        ],
    );
    if correction && quantity.is_some() && method.is_none() {
        return sure(Intent::SetQuantity, slots);
    }
    let explicit_place = has(
        &padded,
        &[
            "place the order",
            "place my order",
            "place order",
            "checkout",
            "check out",
            "order it",
            "order now",
            "order that",
            "submit",
            "thats all",
            "that is all",
            "thats it",
            "complete the order",
            "finish",
            "buy it",
            "buy now",
            "send it",
            "bestellung abschicken",
            "jetzt bestellen",
            "bestelle es",
            "bestell es",
            "bestell das",
            "bestelle das",
            "abschicken",
            "das wars",
            "das ist alles",
            "kaufen",
            "zur kasse",
            "bestellen bitte",
            "bestellung aufgeben",
            "go ahead and order",
        ],
    );
    if explicit_place && product.is_none() {
        return sure(Intent::PlaceOrder, slots);
    }
    if product.is_some() {
        return Interpretation {
            intent: Intent::AddItem,
            slots,
            confidence: 0.85,
        };
    }
    if method.is_some() || window.is_some() {
        return sure(Intent::SetDelivery, slots);
    }
    if explicit_place || has(&padded, &["bestellen", "order"]) {
        return Interpretation {
            intent: Intent::PlaceOrder,
            slots,
            confidence: 0.7,
        };
    }
    // A bare number ("three", "nur zwei") corrects the last line; a longer sentence with
    // an article in it ("tell me a joke") is not a quantity.
    if quantity.is_some() && words.len() <= 3 {
        return Interpretation {
            intent: Intent::SetQuantity,
            slots,
            confidence: 0.6,
        };
    }
    Interpretation {
        intent: Intent::Unknown,
        slots,
        confidence: 0.2,
    }
}

/// Words never part of a product name.
const STOP: &[&str] = &[
    "add",
    "the",
    "a",
    "an",
    "to",
    "my",
    "cart",
    "basket",
    "want",
    "would",
    "like",
    "need",
    "get",
    "me",
    "some",
    "and",
    "of",
    "for",
    "with",
    "ich",
    "mochte",
    "hatte",
    "gern",
    "gerne",
    "den",
    "die",
    "das",
    "dem",
    "der",
    "ein",
    "eine",
    "einen",
    "in",
    "im",
    "warenkorb",
    "noch",
    "more",
    "another",
    "put",
    "order",
    "bestellen",
    "please",
    "und",
    "mit",
    "remove",
    "cancel",
    "make",
    "that",
    "it",
    "express",
    "standard",
    "delivery",
    "lieferung",
    "from",
    "last",
    "von",
    "meiner",
    "letzten",
    "bestellung",
    "take",
    "out",
    "one",
    "two",
    "three",
    "four",
    "five",
    "zwei",
    "drei",
    "vier",
    "funf",
    "can",
    "you",
    "i",
    "id",
    "ll",
    "will",
    "have",
    "hab",
    "place",
    "thats",
    "all",
    "whole",
    "thing",
    "deliver",
    "day",
    "today",
    "same",
    "now",
    "buy",
    "what",
    "whats",
    "tell",
    "joke",
    "weather",
    "mir",
    "was",
    "wie",
    "ist",
    "es",
    "is",
    "how",
    "when",
    "where",
    "arrive",
    "come",
    "gets",
    "here",
    "sure",
    "too",
    "much",
    "done",
    "check",
    "quick",
    "fast",
    "schnell",
    "bis",
    "vor",
    "uhr",
    "pm",
    "am",
    "by",
    "before",
    "until",
];

fn last_quantity(text: &str) -> Option<u32> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        match numbers::quantity(&words[i..]) {
            // "a" alone counts only before a product, not as the article of "a day".
            Some((n, used)) => {
                found = Some(n);
                i += used;
            }
            None => i += 1,
        }
    }
    found
}

fn method(text: &str) -> Option<Method> {
    if has(
        text,
        &[
            "same day",
            "today",
            "heute",
            "heute noch",
            "noch heute",
            "same day delivery",
        ],
    ) {
        Some(Method::SameDay)
    } else if has(
        text,
        &[
            "express",
            "expressversand",
            "express delivery",
            "fast",
            "schnell",
            "asap",
            "eilig",
            "quickly",
            "quick",
        ],
    ) {
        Some(Method::Express)
    } else if has(
        text,
        &[
            "standard",
            "normal",
            "regular",
            "standardversand",
            "cheapest",
            "gunstigste",
        ],
    ) {
        Some(Method::Standard)
    } else {
        None
    }
}

const WEEKDAYS: [(&str, &str, u8); 7] = [
    ("monday", "montag", 0),
    ("tuesday", "dienstag", 1),
    ("wednesday", "mittwoch", 2),
    ("thursday", "donnerstag", 3),
    ("friday", "freitag", 4),
    ("saturday", "samstag", 5),
    ("sunday", "sonntag", 6),
];

/// The delivery window said, and the text without its time ("before 6 pm", "vor 18 uhr"), so
/// that hours are not taken for quantities.
fn window(text: &str) -> (Option<Window>, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut kept = Vec::with_capacity(words.len());
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let next = words.get(i + 1).copied().unwrap_or_default();
        let after = words.get(i + 2).copied().unwrap_or_default();
        if matches!(word, "before" | "by" | "until" | "vor" | "bis")
            && let Ok(hour) = next.parse::<u8>()
        {
            let pm = matches!(after, "pm" | "p");
            let hour = if pm && hour < 12 { hour + 12 } else { hour };
            if hour < 24 {
                found = Some(Window::BeforeHour(hour));
                i += if matches!(after, "pm" | "am" | "uhr" | "oclock") {
                    3
                } else {
                    2
                };
                continue;
            }
        }
        if matches!(word, "tomorrow" | "morgen") {
            found = found.or(Some(Window::Tomorrow));
        }
        if let Some((_, _, day)) = WEEKDAYS
            .iter()
            .find(|(en, de, _)| word == *en || word == *de)
        {
            found = Some(Window::OnWeekday(*day));
        }
        kept.push(word);
        i += 1;
    }
    (found, format!(" {} ", kept.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matching::ProductName;

    fn matcher() -> Matcher {
        Matcher::new(&[
            ProductName {
                sku: "TEE".into(),
                names: vec!["Organic cotton tee".into(), "T-Shirt".into()],
            },
            ProductName {
                sku: "KETTLE".into(),
                names: vec!["Electric kettle".into(), "Wasserkocher".into()],
            },
        ])
    }

    fn intent(text: &str) -> (Intent, Slots) {
        let understood = understand(text, &matcher());
        (understood.intent, understood.slots)
    }

    #[test]
    fn orders_corrections_and_delivery() {
        let (i, s) = intent("uh add two tees to my cart please");
        assert_eq!((i, s.quantity), (Intent::AddItem, Some(2)));
        assert_eq!(s.product, Some(Match::One("TEE".into())));
        assert_eq!(intent("uh make that three").0, Intent::SetQuantity);
        assert_eq!(intent("uh make that three").1.quantity, Some(3));
        let (i, s) = intent("express please, before 6 pm");
        assert_eq!(i, Intent::SetDelivery);
        assert_eq!(
            (s.method, s.window),
            (Some(Method::Express), Some(Window::BeforeHour(18)))
        );
        assert_eq!(s.quantity, None, "the hour is not a quantity");
        assert_eq!(
            intent("am Samstag bitte").1.window,
            Some(Window::OnWeekday(5))
        );
        assert_eq!(intent("ja").0, Intent::Yes);
        assert_eq!(intent("Ich möchte zwei Wasserkocher").1.quantity, Some(2));
        assert_eq!(
            intent("cancel the tee from my last order").0,
            Intent::CancelLine
        );
        assert_eq!(intent("cancel it").0, Intent::CancelOrder);
        assert_eq!(intent("wo ist meine Bestellung?").0, Intent::WhereIsOrder);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_understood_without_a_panic(text in "\\PC{0,400}") {
            let understood = understand(&text, &matcher());
            proptest::prop_assert!((0.0..=1.0).contains(&understood.confidence));
        }
    }

    #[test]
    fn anything_gets_an_answer() {
        for text in [
            "",
            "   ",
            "!!!",
            &"x".repeat(10_000),
            "ääää ßß",
            "🙂🙂",
            "1234567890123",
        ] {
            let understood = understand(text, &matcher());
            assert!(understood.confidence <= 1.0);
        }
    }
}
