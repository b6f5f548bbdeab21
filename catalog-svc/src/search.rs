//! Full-text search over the catalog with tantivy, in memory (rebuilt from the products table
//! at start, kept current on every upsert — the same on SQLite and PostgreSQL deployments).
//!
//! Each product's texts go into the fields of their language: English (and every language
//! without analysis of its own) is stemmed with Snowball's English stemmer; German is folded
//! (ä → a, ß → ss, and the "ae/oe/ue" spellings the same way) and stemmed with the German one.
//! Titles weigh most, then keywords (the synonyms operators give), then descriptions. A query
//! word matches a word exactly, within one or two typos (by its length), or — in German — as
//! part of a compound ("schuhe" finds "Laufschuhe", "Uhr" finds "Laufuhr", "Lauf" finds both). Every word of a
//! query must match.

use std::collections::HashMap;

use oms_proto::catalog::v1::Product;
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
    collector::TopDocs,
    query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RegexQuery, TermQuery},
    schema::{
        Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
    },
    tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer},
};

/// Memory the index writer may use before it flushes a segment.
const WRITER_MEMORY: usize = 50_000_000;

/// The languages with analysis of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lang {
    En,
    De,
}

impl Lang {
    fn of(locale: &str) -> Lang {
        if locale.split('-').next() == Some("de") {
            Lang::De
        } else {
            Lang::En
        }
    }

    fn analyzer_name(self) -> &'static str {
        match self {
            Lang::En => "oms_en",
            Lang::De => "oms_de",
        }
    }

    /// The same without stemming: typos are measured against the words as written.
    fn raw_analyzer_name(self) -> &'static str {
        match self {
            Lang::En => "oms_en_raw",
            Lang::De => "oms_de_raw",
        }
    }

    /// What the analyzer gets: German folds its spellings first.
    fn prepare(self, text: &str) -> String {
        match self {
            Lang::En => text.to_owned(),
            Lang::De => fold_german(text),
        }
    }
}

/// Lower-cases and folds German spellings so that "Müsli", "Muesli" and "Musli" or "Straße"
/// and "Strasse" are one word.
pub fn fold_german(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut chars = lower.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'ä' => out.push('a'),
            'ö' => out.push('o'),
            'ü' => out.push('u'),
            'ß' => out.push_str("ss"),
            'a' | 'o' | 'u' if chars.peek() == Some(&'e') => {
                chars.next();
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A language's text fields.
#[derive(Debug, Clone, Copy)]
struct TextFields {
    title: Field,
    keywords: Field,
    description: Field,
    /// Title and keywords unstemmed, for typos.
    raw: Field,
    /// Title and keywords stemmed and spelled backwards: a compound's head ("…schuh") is a
    /// prefix there, which the term dictionary finds without scanning every word.
    reversed: Field,
}

/// The search index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: std::sync::Mutex<IndexWriter>,
    sku: Field,
    category: Field,
    fields: HashMap<Lang, TextFields>,
}

/// Why the index failed (a bug or memory, never the caller's input).
#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct SearchError(#[from] tantivy::TantivyError);

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Result<Self, SearchError> {
        let mut schema = Schema::builder();
        let sku = schema.add_text_field("sku", STRING | STORED);
        let category = schema.add_text_field("category", STRING);
        let mut fields = HashMap::new();
        for lang in [Lang::En, Lang::De] {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(lang.analyzer_name())
                    .set_index_option(IndexRecordOption::WithFreqs),
            );
            let raw_options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(lang.raw_analyzer_name())
                    .set_index_option(IndexRecordOption::Basic),
            );
            let name = |part: &str| format!("{part}_{}", lang.analyzer_name());
            fields.insert(
                lang,
                TextFields {
                    title: schema.add_text_field(&name("title"), options.clone()),
                    keywords: schema.add_text_field(&name("keywords"), options.clone()),
                    description: schema.add_text_field(&name("description"), options),
                    raw: schema.add_text_field(&name("raw"), raw_options.clone()),
                    reversed: schema.add_text_field(&name("reversed"), raw_options),
                },
            );
        }
        let index = Index::create_in_ram(schema.build());
        for (lang, language) in [(Lang::En, Language::English), (Lang::De, Language::German)] {
            let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(Stemmer::new(language))
                .build();
            index.tokenizers().register(lang.analyzer_name(), analyzer);
            let raw = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .build();
            index.tokenizers().register(lang.raw_analyzer_name(), raw);
        }
        let writer = index.writer(WRITER_MEMORY)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            writer: std::sync::Mutex::new(writer),
            sku,
            category,
            fields,
        })
    }

    /// Puts `products` in the index (replacing what it had of them; inactive ones are only
    /// removed), then makes them searchable.
    pub fn index<'a>(
        &self,
        products: impl IntoIterator<Item = &'a Product>,
    ) -> Result<(), SearchError> {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for product in products {
            writer.delete_term(Term::from_field_text(self.sku, &product.sku));
            if product.active {
                writer.add_document(self.document(product)?)?;
            }
        }
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    fn document(&self, product: &Product) -> Result<TantivyDocument, SearchError> {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.sku, &product.sku);
        for depth in 1..=product.category_path.len() {
            doc.add_text(self.category, category_key(&product.category_path[..depth]));
        }
        for text in &product.texts {
            let lang = Lang::of(&text.locale);
            let fields = self.fields[&lang];
            doc.add_text(fields.title, lang.prepare(&text.title));
            doc.add_text(fields.raw, lang.prepare(&text.title));
            let mut reversed = self.reversed_stems(fields, &lang.prepare(&text.title))?;
            for keyword in &text.keywords {
                doc.add_text(fields.keywords, lang.prepare(keyword));
                doc.add_text(fields.raw, lang.prepare(keyword));
                reversed.push(' ');
                reversed.push_str(&self.reversed_stems(fields, &lang.prepare(keyword))?);
            }
            doc.add_text(fields.reversed, reversed);
            doc.add_text(fields.description, lang.prepare(&text.description));
        }
        Ok(doc)
    }

    /// The stems of `text`, each spelled backwards, space-separated.
    fn reversed_stems(&self, fields: TextFields, text: &str) -> Result<String, SearchError> {
        let mut analyzer = self.index.tokenizer_for_field(fields.title)?;
        let mut stream = analyzer.token_stream(text);
        let mut out = String::with_capacity(text.len());
        while stream.advance() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.extend(stream.token().text.chars().rev());
        }
        Ok(out)
    }

    /// The SKUs matching `query` in `locale`'s language (within `category`, a path from the
    /// root, when not empty), best first, at most `limit`, with their relevance.
    pub fn search(
        &self,
        query: &str,
        locale: &str,
        category: &[String],
        limit: usize,
    ) -> Result<Vec<(String, f32)>, SearchError> {
        let lang = Lang::of(locale);
        let words = self.words(lang, query)?;
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let fields = self.fields[&lang];
        let mut all: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|(stem, raw)| (Occur::Must, word_query(lang, fields, stem, raw)))
            .collect();
        if !category.is_empty() {
            let term = Term::from_field_text(self.category, &category_key(category));
            all.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(all),
            &TopDocs::with_limit(limit.max(1)).order_by_score(),
        )?;
        let mut found = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(sku) = doc.get_first(self.sku).and_then(|v| v.as_str()) {
                found.push((sku.to_owned(), score));
            }
        }
        Ok(found)
    }

    /// The words of a query as the index holds them: stemmed, and as written.
    fn words(&self, lang: Lang, query: &str) -> Result<Vec<(String, String)>, SearchError> {
        let fields = self.fields[&lang];
        let prepared = lang.prepare(query);
        let tokens = |field: Field| -> Result<Vec<String>, SearchError> {
            let mut analyzer = self.index.tokenizer_for_field(field)?;
            let mut stream = analyzer.token_stream(&prepared);
            let mut tokens = Vec::new();
            while stream.advance() {
                tokens.push(stream.token().text.clone());
            }
            Ok(tokens)
        };
        // The same tokenizer and filters but the stemmer: the two lists pair up.
        let mut words: Vec<(String, String)> = Vec::new();
        for pair in tokens(fields.title)?.into_iter().zip(tokens(fields.raw)?) {
            if !words.contains(&pair) {
                words.push(pair);
            }
        }
        Ok(words)
    }
}

/// How a category path is indexed: its segments joined, lower-case.
fn category_key(path: &[String]) -> String {
    path.iter()
        .map(|s| s.to_lowercase())
        .collect::<Vec<_>>()
        .join("/")
}

/// One query word: the exact word (titles first), a near miss of it as written, and in German
/// a part of a compound.
fn word_query(lang: Lang, fields: TextFields, stem: &str, raw: &str) -> Box<dyn Query> {
    let typos: u8 = match raw.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (field, weight) in [
        (fields.title, 3.0),
        (fields.keywords, 2.0),
        (fields.description, 1.0),
    ] {
        let term = Term::from_field_text(field, stem);
        any.push((
            Occur::Should,
            boost(TermQuery::new(term, IndexRecordOption::WithFreqs), weight),
        ));
    }
    if typos > 0 {
        let term = Term::from_field_text(fields.raw, raw);
        any.push((
            Occur::Should,
            boost(FuzzyTermQuery::new(term, typos, true), 1.0),
        ));
    }
    // German writes compounds as one word, its head last: "Laufuhr" is an "Uhr", and a
    // "Laufschuh" is found by "Schuh" (the head: a prefix of the reversed stems) and by
    // "Lauf" (the modifier: a prefix of the stems). Both are prefix walks of the term
    // dictionary, not scans.
    let letters = stem.chars().count();
    if lang == Lang::De && letters >= 3 && stem.chars().all(char::is_alphanumeric) {
        let head: String = stem.chars().rev().collect();
        if let Ok(part) = RegexQuery::from_pattern(&format!("{head}.+"), fields.reversed) {
            any.push((Occur::Should, boost(part, 0.75)));
        }
        if letters >= 4 {
            for field in [fields.title, fields.keywords] {
                if let Ok(part) = RegexQuery::from_pattern(&format!("{stem}.+"), field) {
                    any.push((Occur::Should, boost(part, 0.5)));
                }
            }
        }
    }
    Box::new(BooleanQuery::new(any))
}

fn boost(query: impl Query + 'static, weight: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(Box::new(query), weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::catalog::v1::LocalizedText;

    fn product(sku: &str, category: &[&str], texts: &[(&str, &str, &[&str])]) -> Product {
        Product {
            sku: sku.into(),
            category_path: category.iter().map(|c| (*c).to_owned()).collect(),
            texts: texts
                .iter()
                .map(|(locale, title, keywords)| LocalizedText {
                    locale: (*locale).into(),
                    title: (*title).into(),
                    keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
                    ..Default::default()
                })
                .collect(),
            active: true,
            ..Default::default()
        }
    }

    fn catalog() -> SearchIndex {
        let index = SearchIndex::new().unwrap();
        let products = [
            product(
                "SNKR",
                &["shoes", "running"],
                &[
                    ("en", "Trail running sneakers", &["trainers", "kicks"]),
                    ("de", "Trail-Laufschuhe", &["Turnschuhe"]),
                ],
            ),
            product(
                "MUESLI",
                &["food", "breakfast"],
                &[
                    ("en", "Crunchy granola", &["muesli"]),
                    ("de", "Knuspermüsli", &[]),
                ],
            ),
            product(
                "LAMP",
                &["home", "lighting"],
                &[
                    ("en", "Floor lamp", &[]),
                    ("de", "Stehleuchte", &["Stehlampe"]),
                ],
            ),
            product("STRAP", &["shoes", "care"], &[("en", "Shoe laces", &[])]),
            product(
                "WATCH",
                &["sports"],
                &[("en", "Running watch", &[]), ("de", "Laufuhr", &[])],
            ),
        ];
        index.index(&products).unwrap();
        index
    }

    fn skus(index: &SearchIndex, query: &str, locale: &str) -> Vec<String> {
        index
            .search(query, locale, &[], 10)
            .unwrap()
            .into_iter()
            .map(|(sku, _)| sku)
            .collect()
    }

    #[test]
    fn typos_plurals_and_synonyms_find_the_product() {
        let index = catalog();
        assert_eq!(skus(&index, "snekers", "en"), ["SNKR"]);
        assert_eq!(skus(&index, "lmap", "en"), ["LAMP"], "letters swapped");
        assert_eq!(skus(&index, "sneaker", "en-GB"), ["SNKR"]);
        assert_eq!(skus(&index, "trainers", "en"), ["SNKR"]);
        assert_eq!(skus(&index, "lamps", "en"), ["LAMP"]);
        assert_eq!(skus(&index, "floor lamp", "en"), ["LAMP"]);
        assert!(
            skus(&index, "floor sneakers", "en").is_empty(),
            "every word must match"
        );
    }

    #[test]
    fn german_compounds_and_umlauts() {
        let index = catalog();
        assert_eq!(skus(&index, "Schuhe", "de"), ["SNKR"], "part of Laufschuhe");
        assert_eq!(skus(&index, "Müsli", "de"), ["MUESLI"]);
        assert_eq!(skus(&index, "Muesli", "de-AT"), ["MUESLI"]);
        assert_eq!(skus(&index, "musli", "de"), ["MUESLI"]);
        assert_eq!(skus(&index, "Stehlampe", "de"), ["LAMP"], "a keyword");
        assert_eq!(skus(&index, "Leuchte", "de"), ["LAMP"]);
        assert_eq!(
            skus(&index, "Uhr", "de"),
            ["WATCH"],
            "the head of a compound"
        );
    }

    #[test]
    fn categories_filter_and_inactive_products_leave_the_index() {
        let index = catalog();
        let in_shoes = index.search("shoe", "en", &["Shoes".into()], 10).unwrap();
        assert_eq!(in_shoes.len(), 1, "{in_shoes:?}");
        let mut gone = product("LAMP", &["home"], &[("en", "Floor lamp", &[])]);
        gone.active = false;
        index.index([&gone]).unwrap();
        assert!(skus(&index, "lamp", "en").is_empty());
        assert_eq!(fold_german("Straße Äpfel Bauer"), "strasse apfel baur");
    }
}
