//! assistant-svc: ordering by talking (issue 18, first part: the language understanding).
//!
//! * [`nlu`] — a deterministic parser for English and German: what the buyer wants (intent)
//!   and the details (product, quantity, delivery method and window), with products matched
//!   against the catalog by spelling and by sound, and a question back when two are close.
//! * [`dialogue`] — the conversation: the draft, the read-back and the spoken yes, undo.
//! * [`labelled`] — the labelled utterances it is measured on (`oms assistant evaluate`).

pub mod dialogue;
pub mod labelled;
pub mod nlu;
