//! Products as operators write them and as the app sees them: what a product must carry, and
//! its texts in the caller's language (the exact locale, then the language, then the
//! product's first).

use oms_platform::error::{ApiError, FieldViolation};
use oms_proto::catalog::v1::{LocalizedText, Product, ProductView};

use super::ar;

/// Longest SKU accepted (inventory's limit).
const MAX_SKU: usize = 64;

/// `product` checked and tidied (texts trimmed, locales lower-cased, categories trimmed), or
/// every field that is wrong.
pub fn validate(mut product: Product) -> Result<Product, ApiError> {
    let mut wrong = Vec::new();
    let mut bad = |field: String, description: &str| {
        wrong.push(FieldViolation {
            field,
            description: description.to_owned(),
        });
    };
    product.sku = product.sku.trim().to_owned();
    if product.sku.is_empty() || product.sku.len() > MAX_SKU {
        bad("product.sku".into(), "required, at most 64 characters");
    }
    if product.texts.is_empty() {
        bad("product.texts".into(), "at least one language");
    }
    let mut locales = std::collections::BTreeSet::new();
    for (i, text) in product.texts.iter_mut().enumerate() {
        text.locale = text.locale.trim().to_ascii_lowercase();
        text.title = text.title.trim().to_owned();
        text.keywords.retain(|k| !k.trim().is_empty());
        if !is_locale(&text.locale) {
            bad(
                format!("product.texts[{i}].locale"),
                "a language tag such as \"en\" or \"de-AT\"",
            );
        } else if !locales.insert(text.locale.clone()) {
            bad(format!("product.texts[{i}].locale"), "one text per locale");
        }
        if text.title.is_empty() {
            bad(format!("product.texts[{i}].title"), "required");
        }
    }
    for segment in &mut product.category_path {
        *segment = segment.trim().to_owned();
    }
    if product.category_path.iter().any(String::is_empty) {
        bad("product.category_path".into(), "no empty category names");
    }
    for (i, image) in product.images.iter().enumerate() {
        if !image.url.starts_with("https://") {
            bad(format!("product.images[{i}].url"), "must be an https URL");
        }
    }
    if let Some(model) = &product.ar {
        wrong.extend(ar::violations("product.ar", model));
    }
    if wrong.is_empty() {
        Ok(product)
    } else {
        Err(ApiError::InvalidArgument(wrong))
    }
}

/// "en", "de", "de-at", "zh-hant-tw": a language subtag of 2–3 letters, then subtags of 2–8
/// letters or digits.
fn is_locale(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()));
    language_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The texts for `locale`: exactly it, else its language, else the first.
pub fn texts_for<'a>(product: &'a Product, locale: &str) -> Option<&'a LocalizedText> {
    let locale = locale.trim().to_ascii_lowercase();
    let language = locale.split('-').next().unwrap_or_default();
    product
        .texts
        .iter()
        .find(|t| t.locale == locale)
        .or_else(|| {
            product
                .texts
                .iter()
                .find(|t| t.locale.split('-').next() == Some(language))
        })
        .or(product.texts.first())
}

/// The product as the app shows it in `locale` (stock and delivery filled in by the caller).
pub fn view(product: &Product, locale: &str) -> ProductView {
    let text = texts_for(product, locale).cloned().unwrap_or_default();
    ProductView {
        sku: product.sku.clone(),
        locale: text.locale,
        title: text.title,
        description: text.description,
        brand: product.brand.clone(),
        category_path: product.category_path.clone(),
        attributes: product.attributes.clone(),
        images: product.images.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(locale: &str, title: &str) -> LocalizedText {
        LocalizedText {
            locale: locale.into(),
            title: title.into(),
            ..Default::default()
        }
    }

    fn sneaker() -> Product {
        Product {
            sku: " SNKR-1 ".into(),
            texts: vec![text("EN", " Running sneakers "), text("de", "Laufschuhe")],
            category_path: vec!["shoes".into(), " running ".into()],
            active: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_product_is_tidied_and_its_texts_follow_the_callers_language() {
        let product = validate(sneaker()).unwrap();
        assert_eq!(product.sku, "SNKR-1");
        assert_eq!(product.category_path, ["shoes", "running"]);
        assert_eq!(texts_for(&product, "de-AT").unwrap().title, "Laufschuhe");
        assert_eq!(
            texts_for(&product, "en-GB").unwrap().title,
            "Running sneakers"
        );
        assert_eq!(texts_for(&product, "fr").unwrap().locale, "en", "the first");
        assert_eq!(view(&product, "de").title, "Laufschuhe");
    }

    #[test]
    fn every_wrong_field_is_named() {
        let mut product = sneaker();
        product.sku = " ".into();
        product.texts.push(text("de", "Turnschuhe"));
        product.texts.push(text("not a tag", ""));
        product.images.push(oms_proto::catalog::v1::Image {
            url: "ftp://x/y.png".into(),
            ..Default::default()
        });
        let Err(ApiError::InvalidArgument(wrong)) = validate(product) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = wrong.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "product.sku",
                "product.texts[2].locale",
                "product.texts[3].locale",
                "product.texts[3].title",
                "product.images[0].url"
            ]
        );
    }
}
