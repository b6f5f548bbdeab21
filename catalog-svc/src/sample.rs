//! The sample world's catalog, for `oms dev`: a newcomer can browse, search (in English and
//! German) and open AR models at once. Seeded only into an empty catalog.

use oms_proto::catalog::v1::{
    ArAsset, ArFormat, ArModel, ArPlacement, Attribute, Dimensions, LevelOfDetail, LocalizedText,
    Product,
};

fn text(locale: &str, title: &str, description: &str, keywords: &[&str]) -> LocalizedText {
    LocalizedText {
        locale: locale.into(),
        title: title.into(),
        description: description.into(),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
    }
}

/// A model with a small and a large file in both formats (placeholder URLs on the CDN the
/// operator configures; sizes and digests as an asset pipeline would report them).
fn model(name: &str, size: (f64, f64, f64), placement: ArPlacement) -> ArModel {
    let file = |format: ArFormat, lod: LevelOfDetail, bytes: u64| {
        let ext = if format == ArFormat::Usdz {
            "usdz"
        } else {
            "glb"
        };
        let level = if lod == LevelOfDetail::Low {
            "low"
        } else {
            "high"
        };
        ArAsset {
            format: format.into(),
            level_of_detail: lod.into(),
            url: format!("https://assets.example.com/ar/{name}-{level}.{ext}"),
            byte_size: bytes,
            sha256: format!("{:064x}", bytes * 7919 + name.len() as u64),
        }
    };
    ArModel {
        dimensions: Some(Dimensions {
            width_m: size.0,
            height_m: size.1,
            depth_m: size.2,
        }),
        placement: placement.into(),
        assets: vec![
            file(ArFormat::Glb, LevelOfDetail::Low, 450_000),
            file(ArFormat::Glb, LevelOfDetail::High, 6_200_000),
            file(ArFormat::Usdz, LevelOfDetail::Low, 610_000),
            file(ArFormat::Usdz, LevelOfDetail::High, 8_900_000),
        ],
    }
}

fn product(sku: &str, category: &[&str], brand: &str, texts: Vec<LocalizedText>) -> Product {
    Product {
        sku: sku.into(),
        texts,
        brand: brand.into(),
        category_path: category.iter().map(|c| (*c).to_owned()).collect(),
        active: true,
        ..Default::default()
    }
}

/// The sample products.
pub fn products() -> Vec<Product> {
    let mut lamp = product(
        "LAMP",
        &["home", "lighting"],
        "Lumen",
        vec![
            text(
                "en",
                "Floor lamp",
                "Dimmable LED floor lamp, 160 cm.",
                &["standing lamp", "light"],
            ),
            text(
                "de",
                "Stehleuchte",
                "Dimmbare LED-Stehleuchte, 160 cm.",
                &["Stehlampe", "Licht"],
            ),
        ],
    );
    lamp.ar = Some(model("floor-lamp", (0.35, 1.6, 0.35), ArPlacement::Floor));
    let mut chair = product(
        "CHAIR",
        &["home", "furniture"],
        "Urban Oak",
        vec![
            text("en", "Oak dining chair", "Solid oak, oiled.", &["seat"]),
            text(
                "de",
                "Esszimmerstuhl aus Eiche",
                "Massive Eiche, geölt.",
                &["Stuhl"],
            ),
        ],
    );
    chair.ar = Some(model("oak-chair", (0.45, 0.82, 0.5), ArPlacement::Floor));
    let mut clock = product(
        "CLOCK",
        &["home", "decoration"],
        "Havel",
        vec![
            text(
                "en",
                "Wall clock",
                "Silent sweep movement, 30 cm.",
                &["clock"],
            ),
            text("de", "Wanduhr", "Lautloses Uhrwerk, 30 cm.", &["Uhr"]),
        ],
    );
    clock.ar = Some(model("wall-clock", (0.3, 0.3, 0.05), ArPlacement::Wall));
    let mut tee = product(
        "TEE",
        &["apparel", "shirts"],
        "Fjord",
        vec![
            text(
                "en",
                "Organic cotton tee",
                "Unisex, regular fit.",
                &["t-shirt", "shirt"],
            ),
            text(
                "de",
                "Bio-Baumwoll-T-Shirt",
                "Unisex, normale Passform.",
                &["Shirt"],
            ),
        ],
    );
    tee.attributes = vec![Attribute {
        name: "material".into(),
        value: "cotton".into(),
    }];
    vec![
        lamp,
        chair,
        clock,
        tee,
        product(
            "SNEAKERS",
            &["shoes", "running"],
            "Kestrel",
            vec![
                text(
                    "en",
                    "Trail running sneakers",
                    "Grippy sole, waterproof.",
                    &["trainers", "running shoes"],
                ),
                text(
                    "de",
                    "Trail-Laufschuhe",
                    "Griffige Sohle, wasserdicht.",
                    &["Turnschuhe"],
                ),
            ],
        ),
        product(
            "WATCH",
            &["accessories", "watches"],
            "Alpenwerk",
            vec![
                text(
                    "en",
                    "Automatic watch",
                    "Steel case, sapphire glass.",
                    &["wristwatch"],
                ),
                text(
                    "de",
                    "Automatikuhr",
                    "Stahlgehäuse, Saphirglas.",
                    &["Armbanduhr"],
                ),
            ],
        ),
        product(
            "MUESLI",
            &["food", "breakfast"],
            "Bergmann",
            vec![
                text(
                    "en",
                    "Crunchy granola",
                    "Oats, nuts, honey.",
                    &["muesli", "cereal"],
                ),
                text("de", "Knuspermüsli", "Hafer, Nüsse, Honig.", &["Müsli"]),
            ],
        ),
        product(
            "KETTLE",
            &["kitchen", "appliances"],
            "Nordlicht",
            vec![
                text(
                    "en",
                    "Electric kettle",
                    "1.7 l, stainless steel.",
                    &["water boiler"],
                ),
                text("de", "Wasserkocher", "1,7 l, Edelstahl.", &["Teekocher"]),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_catalog_is_valid() {
        for product in products() {
            let sku = product.sku.clone();
            assert!(crate::domain::product::validate(product).is_ok(), "{sku}");
        }
    }
}
