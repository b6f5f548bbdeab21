//! How a recommendation's reason is told to the buyer: its kind, what it refers to, and a
//! sentence in their language (German for a `de` locale, English otherwise).

use oms_proto::catalog::v1::{RecommendationReason, Recommended};

use crate::recommend::Reason;

/// A [`Recommended`] without its product: the reason, told. `title_of` names a related SKU.
pub fn explain(reason: &Reason, locale: &str, title_of: impl Fn(&str) -> String) -> Recommended {
    let german = locale.trim().to_lowercase().starts_with("de");
    let say = |de: String, en: String| if german { de } else { en };
    let (kind, related_sku, category, explanation) = match reason {
        Reason::BoughtWith(other) => {
            let title = title_of(other);
            (
                RecommendationReason::BoughtWith,
                other.clone(),
                String::new(),
                say(
                    format!("Oft zusammen gekauft mit {title}"),
                    format!("Often bought with {title}"),
                ),
            )
        }
        Reason::BuyAgain => (
            RecommendationReason::BuyAgain,
            String::new(),
            String::new(),
            say("Wieder kaufen".into(), "Buy it again".into()),
        ),
        Reason::PopularNearYou => (
            RecommendationReason::PopularNearYou,
            String::new(),
            String::new(),
            say("Beliebt in deiner Nähe".into(), "Popular near you".into()),
        ),
        Reason::YourCategory(category) => (
            RecommendationReason::YourCategory,
            String::new(),
            category.clone(),
            say(
                format!("Weil du gern in {category} kaufst"),
                format!("Because you shop {category}"),
            ),
        ),
        Reason::Popular => (
            RecommendationReason::Popular,
            String::new(),
            String::new(),
            say("Beliebt".into(), "Popular".into()),
        ),
    };
    Recommended {
        product: None,
        reason: kind.into(),
        related_sku,
        category,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_told_in_the_buyers_language() {
        let title = |sku: &str| {
            if sku == "LAMP" {
                "Stehleuchte".into()
            } else {
                sku.into()
            }
        };
        let told = explain(&Reason::BoughtWith("LAMP".into()), "de-AT", title);
        assert_eq!(told.explanation, "Oft zusammen gekauft mit Stehleuchte");
        assert_eq!(told.related_sku, "LAMP");
        assert_eq!(told.reason(), RecommendationReason::BoughtWith);
        let told = explain(&Reason::YourCategory("kitchen".into()), "en", title);
        assert_eq!(told.explanation, "Because you shop kitchen");
        assert_eq!(told.category, "kitchen");
        assert_eq!(
            explain(&Reason::PopularNearYou, "", title).explanation,
            "Popular near you"
        );
    }
}
