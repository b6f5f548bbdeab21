//! The conversation: what one utterance, understood, does to the buyer's draft order, what the
//! assistant says back, and what the service must do (quote, place, cancel, look up). Pure —
//! the service runs the actions against the real services and feeds the results back.
//!
//! Nothing is ordered without an explicit yes to a read-back: "place the order" asks for a
//! quote and reads back lines, total and delivery promise; only a yes to that read-back
//! places, with an idempotency key fixed at the read-back, so a second "yes" places nothing
//! new.

use crate::nlu::{Intent, Interpretation, Method, Window, matching::Match};

/// The buyer's language for replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// German for a `de` locale, English otherwise.
    pub fn of(locale: &str) -> Lang {
        if locale.trim().to_lowercase().starts_with("de") {
            Lang::De
        } else {
            Lang::En
        }
    }
}

/// One line of the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: u32,
}

/// What the buyer is putting together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub lines: Vec<Line>,
    pub method: Option<Method>,
    pub window: Option<Window>,
}

/// What the assistant waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// Which of these products (and how many).
    Choice(Vec<String>, u32),
    /// A yes to the read-back of turn `at`.
    Confirmation {
        at: u64,
    },
    /// The read-back was ordered.
    Placed,
}

/// What the service must do for a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    /// Quote the draft and read it back ([`Conversation::read_back`]).
    Quote,
    /// Place the draft with this idempotency key.
    Place {
        idempotency_key: String,
    },
    /// Cancel the buyer's latest order (a line of it when `sku` is given).
    Cancel {
        sku: Option<String>,
    },
    /// Tell the status and ETA of the buyer's latest order.
    Track,
    /// Put the buyer's latest order's lines into the draft.
    Reorder,
}

/// The assistant's answer to one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub reply: String,
    pub action: Action,
    pub quick_replies: Vec<String>,
}

/// One buyer's conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    session: String,
    lang: Lang,
    draft: Draft,
    earlier: Vec<Draft>,
    pending: Pending,
    last_reply: String,
    turns: u64,
}

/// Understood less surely than this, the assistant asks again instead of guessing.
pub const MIN_CONFIDENCE: f64 = 0.5;

impl Conversation {
    /// A new conversation.
    pub fn new(session: &str, lang: Lang) -> Self {
        Self {
            session: session.to_owned(),
            lang,
            draft: Draft::default(),
            earlier: Vec::new(),
            pending: Pending::Nothing,
            last_reply: String::new(),
            turns: 0,
        }
    }

    /// The draft as it stands.
    pub fn draft(&self) -> &Draft {
        &self.draft
    }

    fn say(&self, en: String, de: String) -> String {
        match self.lang {
            Lang::En => en,
            Lang::De => de,
        }
    }

    fn change(&mut self, change: impl FnOnce(&mut Draft)) {
        self.earlier.push(self.draft.clone());
        change(&mut self.draft);
    }

    fn add(&mut self, sku: &str, quantity: u32) {
        self.change(
            |draft| match draft.lines.iter_mut().find(|l| l.sku == sku) {
                Some(line) => line.quantity += quantity,
                None => draft.lines.push(Line {
                    sku: sku.to_owned(),
                    quantity,
                }),
            },
        );
    }

    /// What one understood utterance does; `name` gives a product's name in the buyer's
    /// language.
    pub fn turn(&mut self, understood: &Interpretation, name: impl Fn(&str) -> String) -> Turn {
        self.turns += 1;
        let turn = self.respond(understood, &name);
        if understood.intent != Intent::Repeat {
            self.last_reply.clone_from(&turn.reply);
        }
        turn
    }

    fn reply(&self, en: String, de: String) -> Turn {
        Turn {
            reply: self.say(en, de),
            action: Action::None,
            quick_replies: Vec::new(),
        }
    }

    fn respond(&mut self, understood: &Interpretation, name: &impl Fn(&str) -> String) -> Turn {
        let slots = &understood.slots;
        if understood.confidence < MIN_CONFIDENCE {
            return self.not_understood();
        }
        // A product named while a choice is open answers it.
        if let (Pending::Choice(options, quantity), Some(Match::One(sku))) =
            (self.pending.clone(), &slots.product)
            && options.contains(sku)
        {
            self.pending = Pending::Nothing;
            let quantity = slots.quantity.unwrap_or(quantity);
            self.add(sku, quantity);
            return self.added(sku, quantity, name);
        }
        match understood.intent {
            Intent::AddItem => match &slots.product {
                Some(Match::One(sku)) => {
                    let quantity = slots.quantity.unwrap_or(1);
                    self.add(sku, quantity);
                    self.pending = Pending::Nothing;
                    self.added(sku, quantity, name)
                }
                Some(Match::Ambiguous(options)) => {
                    let names: Vec<String> = options.iter().map(|s| name(s)).collect();
                    self.pending = Pending::Choice(options.clone(), slots.quantity.unwrap_or(1));
                    let mut turn = self.reply(
                        format!("Which one: {}?", names.join(" or ")),
                        format!("Welches: {}?", names.join(" oder ")),
                    );
                    turn.quick_replies = names;
                    turn
                }
                None => self.reply("Which product?".into(), "Welches Produkt?".into()),
            },
            Intent::RemoveItem => match &slots.product {
                Some(Match::One(sku)) if self.draft.lines.iter().any(|l| &l.sku == sku) => {
                    let sku = sku.clone();
                    self.change(|d| d.lines.retain(|l| l.sku != sku));
                    self.reply(
                        format!("Removed {}.", name(&sku)),
                        format!("{} entfernt.", name(&sku)),
                    )
                }
                _ => self.reply(
                    "That is not in your cart.".into(),
                    "Das ist nicht im Warenkorb.".into(),
                ),
            },
            Intent::SetQuantity => match (slots.quantity, self.draft.lines.last().cloned()) {
                (Some(quantity), Some(last)) => {
                    self.change(|d| {
                        if let Some(line) = d.lines.last_mut() {
                            line.quantity = quantity;
                        }
                    });
                    self.reply(
                        format!("Now {quantity} × {}.", name(&last.sku)),
                        format!("Jetzt {quantity} × {}.", name(&last.sku)),
                    )
                }
                _ => self.reply("How many of what?".into(), "Wie viele wovon?".into()),
            },
            Intent::SetDelivery => {
                let (method, window) = (slots.method, slots.window);
                self.change(|d| {
                    d.method = method.or(d.method);
                    d.window = window.or(d.window);
                });
                self.reply("Delivery noted.".into(), "Lieferung notiert.".into())
            }
            Intent::ShowCart => {
                let listed = self.listed(name);
                if listed.is_empty() {
                    self.reply(
                        "Your cart is empty.".into(),
                        "Dein Warenkorb ist leer.".into(),
                    )
                } else {
                    self.reply(
                        format!("In your cart: {listed}."),
                        format!("Im Warenkorb: {listed}."),
                    )
                }
            }
            Intent::Undo => match self.earlier.pop() {
                Some(before) => {
                    self.draft = before;
                    self.pending = Pending::Nothing;
                    self.reply("Undone.".into(), "Rückgängig gemacht.".into())
                }
                None => self.reply(
                    "Nothing to undo.".into(),
                    "Nichts rückgängig zu machen.".into(),
                ),
            },
            Intent::PlaceOrder => {
                if self.draft.lines.is_empty() {
                    return self.reply(
                        "Your cart is empty.".into(),
                        "Dein Warenkorb ist leer.".into(),
                    );
                }
                self.pending = Pending::Confirmation { at: self.turns };
                Turn {
                    reply: String::new(),
                    action: Action::Quote,
                    quick_replies: Vec::new(),
                }
            }
            Intent::Yes => match self.pending {
                Pending::Placed => self.reply(
                    "That's already ordered.".into(),
                    "Das ist schon bestellt.".into(),
                ),
                Pending::Confirmation { at } => Turn {
                    reply: self.say("Ordering now.".into(), "Ich bestelle jetzt.".into()),
                    action: Action::Place {
                        idempotency_key: format!("assistant-{}-{at}", self.session),
                    },
                    quick_replies: Vec::new(),
                },
                _ => self.reply(
                    "Yes to what? Say \"place the order\" when you are ready.".into(),
                    "Ja wozu? Sag \"bestellen\", wenn du so weit bist.".into(),
                ),
            },
            Intent::No => {
                self.pending = Pending::Nothing;
                self.reply(
                    "OK, I won't order.".into(),
                    "Gut, ich bestelle nicht.".into(),
                )
            }
            Intent::Repeat => Turn {
                reply: self.last_reply.clone(),
                action: Action::None,
                quick_replies: Vec::new(),
            },
            Intent::CancelOrder | Intent::CancelLine => Turn {
                reply: String::new(),
                action: Action::Cancel {
                    sku: match &slots.product {
                        Some(Match::One(sku)) if understood.intent == Intent::CancelLine => {
                            Some(sku.clone())
                        }
                        _ => None,
                    },
                },
                quick_replies: Vec::new(),
            },
            Intent::WhereIsOrder => Turn {
                reply: String::new(),
                action: Action::Track,
                quick_replies: Vec::new(),
            },
            Intent::Reorder => Turn {
                reply: String::new(),
                action: Action::Reorder,
                quick_replies: Vec::new(),
            },
            Intent::Unknown => self.not_understood(),
        }
    }

    fn not_understood(&self) -> Turn {
        self.reply(
            "Sorry, I didn't catch that. You can say \"add two tees\" or \"where is my order\".".into(),
            "Entschuldigung, das habe ich nicht verstanden. Sag zum Beispiel \"zwei T-Shirts\" oder \"wo ist meine Bestellung\".".into(),
        )
    }

    fn added(&self, sku: &str, quantity: u32, name: &impl Fn(&str) -> String) -> Turn {
        let mut turn = self.reply(
            format!("Added {quantity} × {}. Anything else?", name(sku)),
            format!("{quantity} × {} hinzugefügt. Noch etwas?", name(sku)),
        );
        turn.quick_replies = match self.lang {
            Lang::En => vec!["Place the order".into(), "What's in my cart?".into()],
            Lang::De => vec!["Bestellen".into(), "Was ist im Warenkorb?".into()],
        };
        turn
    }

    fn listed(&self, name: &impl Fn(&str) -> String) -> String {
        self.draft
            .lines
            .iter()
            .map(|l| format!("{} × {}", l.quantity, name(&l.sku)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The read-back after a quote: lines, total and promise, and the question. Remembered for
    /// "repeat".
    pub fn read_back(&mut self, total: &str, promise: &str, name: impl Fn(&str) -> String) -> Turn {
        let listed = self.listed(&name);
        let turn = Turn {
            reply: self.say(
                format!("I'll order {listed} for {total}, arriving {promise}. Shall I place it?"),
                format!(
                    "Ich bestelle {listed} für {total}, Lieferung {promise}. Soll ich bestellen?"
                ),
            ),
            action: Action::None,
            quick_replies: match self.lang {
                Lang::En => vec!["Yes".into(), "No".into()],
                Lang::De => vec!["Ja".into(), "Nein".into()],
            },
        };
        self.last_reply.clone_from(&turn.reply);
        turn
    }

    /// The quote could not be read back (no address, no way to deliver): no yes can place.
    pub fn withdraw(&mut self) {
        if let Pending::Confirmation { .. } = self.pending {
            self.pending = Pending::Nothing;
        }
    }

    /// The buyer's last order's lines become the draft (undoable).
    pub fn reorder(&mut self, lines: &[(String, u32)]) {
        self.change(|draft| {
            draft.lines = lines
                .iter()
                .map(|(sku, quantity)| Line {
                    sku: sku.clone(),
                    quantity: *quantity,
                })
                .collect();
        });
    }

    /// The order went through: the draft starts over, and another "yes" orders nothing.
    pub fn placed(&mut self) {
        if let Pending::Confirmation { .. } = self.pending {
            self.pending = Pending::Placed;
        }
        self.earlier.clear();
        self.draft = Draft::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{labelled, nlu};

    fn talk(conversation: &mut Conversation, text: &str) -> Turn {
        let matcher = nlu::matching::Matcher::new(&labelled::catalog());
        let understood = nlu::understand(text, &matcher);
        conversation.turn(&understood, |sku| sku.to_lowercase())
    }

    #[test]
    fn a_cart_by_voice_and_nothing_placed_without_a_yes() {
        let mut c = Conversation::new("s1", Lang::En);
        talk(&mut c, "add two tees");
        talk(&mut c, "uh make that three");
        let asked = talk(&mut c, "sneakers");
        assert_eq!(asked.reply, "Which one: snkr-black or snkr-white?");
        talk(&mut c, "the white ones");
        assert_eq!(
            c.draft().lines,
            [
                Line {
                    sku: "TEE".into(),
                    quantity: 3
                },
                Line {
                    sku: "SNKR-WHITE".into(),
                    quantity: 1
                },
            ]
        );
        assert_eq!(
            talk(&mut c, "yes").action,
            Action::None,
            "nothing to say yes to"
        );
        assert_eq!(talk(&mut c, "place the order").action, Action::Quote);
        let read = c.read_back("€61.70", "tomorrow", |s| s.to_lowercase());
        assert!(read.reply.contains("3 × tee"), "{}", read.reply);
        let first = talk(&mut c, "yes");
        // A lost answer: the same yes again, before the service said it placed: the same key.
        let retried = talk(&mut c, "yes");
        assert!(matches!(first.action, Action::Place { .. }));
        assert_eq!(first.action, retried.action, "the same key: one order");
        c.placed();
        let again = talk(&mut c, "yes");
        assert_eq!(again.action, Action::None, "{}", again.reply);
        assert_eq!(talk(&mut c, "repeat").reply, again.reply);
    }

    #[test]
    fn undo_no_and_german() {
        let mut c = Conversation::new("s2", Lang::De);
        talk(&mut c, "zwei Wasserkocher");
        talk(&mut c, "rückgängig");
        assert!(c.draft().lines.is_empty());
        assert_eq!(talk(&mut c, "bestellen").reply, "Dein Warenkorb ist leer.");
        talk(&mut c, "eine Wanduhr");
        assert_eq!(talk(&mut c, "bestellen").action, Action::Quote);
        talk(&mut c, "nein");
        assert_eq!(
            talk(&mut c, "ja").action,
            Action::None,
            "the no closed the question"
        );
        assert_eq!(
            talk(&mut c, "wo ist meine Bestellung").action,
            Action::Track
        );
        assert_eq!(
            talk(&mut c, "storniere die Wanduhr").action,
            Action::Cancel {
                sku: Some("CLOCK".into())
            }
        );
        assert!(talk(&mut c, "blah").reply.starts_with("Entschuldigung"));
    }
}
