//! The use cases: upsert, get, search, browse — over the products in memory (every replica
//! holds them all, refreshed from the table), the search index, and what events said of stock
//! and centers.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use oms_platform::{
    error::ApiError,
    events::{from_timestamp, to_timestamp},
};
use oms_proto::{
    catalog::v1::{
        BrowseCatalogRequest, BrowseCatalogResponse, CategoryCount, GetProductRequest,
        InteractionKind, Product, ProductView, RecommendRequest, RecommendResponse,
        RecommendationSurface, Recommended, ReportInteractionRequest, SearchProductsRequest,
        SearchProductsResponse, SetPersonalizationRequest,
    },
    common::v1::GeoPoint,
};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{CatalogError, ar, explain, product},
    recommend::Context,
    search::SearchIndex,
    stock::Availability,
    store::Store,
    tastes::{ADD_TO_CART_WEIGHT, Tastes, VIEW_WEIGHT},
};

/// Recommendations one call may ask for.
const MAX_RECOMMENDATIONS: u32 = 50;
/// Products one import may carry.
const MAX_IMPORT: usize = 1_000;
/// Results a search ranks before paging (relevance first picks them, delivery time re-ranks).
const SEARCH_DEPTH: usize = 200;
/// Longest query accepted.
const MAX_QUERY: usize = 200;
/// A page when the caller does not say.
const DEFAULT_PAGE: u32 = 20;
/// The largest page.
const MAX_PAGE: u32 = 100;
/// A product that cannot reach the buyer ranks as if it were this much less relevant.
const UNDELIVERABLE_WEIGHT: f32 = 0.25;

/// The catalog.
pub struct Catalog {
    store: Store,
    products: RwLock<HashMap<String, Product>>,
    search: SearchIndex,
    availability: Arc<Availability>,
    tastes: Arc<Tastes>,
}

impl Catalog {
    /// The catalog of `store` holding `products` (read from it at start), indexed.
    pub fn new(
        store: Store,
        products: Vec<Product>,
        availability: Arc<Availability>,
        tastes: Arc<Tastes>,
    ) -> Result<Self, CatalogError> {
        let search = SearchIndex::new()?;
        search.index(&products)?;
        Ok(Self {
            store,
            products: RwLock::new(products.into_iter().map(|p| (p.sku.clone(), p)).collect()),
            search,
            availability,
            tastes,
        })
    }

    /// Whether the catalog has no product at all.
    pub fn is_empty(&self) -> bool {
        self.products
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Creates or replaces a product.
    pub async fn upsert(&self, product: Product) -> Result<Product, CatalogError> {
        let mut imported = self
            .import(vec![product], |field, _| field.to_owned())
            .await?;
        imported
            .pop()
            .ok_or_else(|| CatalogError::Corrupt("an upsert stored nothing".into()))
    }

    /// Creates or replaces products, all or none (at most [`MAX_IMPORT`]); a bad field is
    /// named with its product's place ("products[3].sku").
    pub async fn import_all(&self, products: Vec<Product>) -> Result<usize, CatalogError> {
        if products.len() > MAX_IMPORT {
            return Err(ApiError::invalid("products", "at most 1,000 per call").into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = products
            .iter()
            .position(|p| !seen.insert(p.sku.trim().to_owned()))
        {
            return Err(ApiError::invalid(
                format!("products[{twice}].sku"),
                "appears twice in the import",
            )
            .into());
        }
        let rename =
            |field: &str, i: usize| field.replacen("product.", &format!("products[{i}]."), 1);
        Ok(self.import(products, rename).await?.len())
    }

    /// Validates every product (naming a bad field with `rename(field, index)`), then stores
    /// and indexes them all, or nothing.
    async fn import(
        &self,
        products: Vec<Product>,
        rename: impl Fn(&str, usize) -> String,
    ) -> Result<Vec<Product>, CatalogError> {
        let now = Some(to_timestamp(Utc::now()));
        let mut valid = Vec::with_capacity(products.len());
        let mut wrong = Vec::new();
        for (i, product) in products.into_iter().enumerate() {
            match product::validate(product) {
                Ok(mut product) => {
                    product.updated_at = now;
                    valid.push(product);
                }
                Err(ApiError::InvalidArgument(violations)) => {
                    wrong.extend(violations.into_iter().map(|mut v| {
                        v.field = rename(&v.field, i);
                        v
                    }));
                }
                Err(other) => return Err(other.into()),
            }
        }
        if !wrong.is_empty() {
            return Err(ApiError::InvalidArgument(wrong).into());
        }
        self.store.upsert_products(&valid).await?;
        self.remember(valid.clone())?;
        Ok(valid)
    }

    /// Takes products written here or by another replica into memory and the index.
    fn remember(&self, products: Vec<Product>) -> Result<(), CatalogError> {
        self.search.index(&products)?;
        self.tastes.set_categories(
            products
                .iter()
                .map(|p| (p.sku.as_str(), p.category_path.first())),
        );
        let mut known = self
            .products
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for product in products {
            known.insert(product.sku.clone(), product);
        }
        Ok(())
    }

    /// Reads products other replicas changed since `since` (and some before, for clocks a little
    /// apart), taking those that are newer than what memory holds.
    async fn refresh(&self, since: DateTime<Utc>) -> Result<(), CatalogError> {
        let changed = self
            .store
            .products_changed_since(since - chrono::Duration::seconds(5))
            .await?;
        let newer: Vec<Product> = {
            let known = self.products.read().unwrap_or_else(PoisonError::into_inner);
            changed
                .into_iter()
                .filter(|p| {
                    known
                        .get(&p.sku)
                        .is_none_or(|k| changed_at(k) < changed_at(p))
                })
                .collect()
        };
        if !newer.is_empty() {
            self.remember(newer)?;
        }
        Ok(())
    }

    /// One active product as the app shows it, with its AR file for the device.
    pub fn get(&self, request: &GetProductRequest) -> Result<ProductView, CatalogError> {
        let near = point(request.near.as_ref(), "near")?;
        let known = self.products.read().unwrap_or_else(PoisonError::into_inner);
        let found = known
            .get(request.sku.trim())
            .filter(|p| p.active)
            .ok_or_else(|| CatalogError::UnknownProduct(request.sku.trim().to_owned()))?;
        let mut view = self.view(found, &request.locale, near);
        view.ar = found
            .ar
            .as_ref()
            .and_then(|model| ar::choose(model, request.platform(), request.network()));
        Ok(view)
    }

    /// Products matching a query, best first.
    pub fn search(
        &self,
        request: &SearchProductsRequest,
    ) -> Result<SearchProductsResponse, CatalogError> {
        let query = request.query.trim();
        if query.is_empty() || query.chars().count() > MAX_QUERY {
            return Err(ApiError::invalid("query", "required, at most 200 characters").into());
        }
        let near = point(request.near.as_ref(), "near")?;
        if request.deliverable_only && near.is_none() {
            return Err(ApiError::invalid("near", "required with deliverable_only").into());
        }
        let (offset, size) = page(&request.page_token, request.page_size)?;
        let hits =
            self.search
                .search(query, &request.locale, &request.category_path, SEARCH_DEPTH)?;
        let known = self.products.read().unwrap_or_else(PoisonError::into_inner);
        let mut ranked: Vec<(f32, ProductView)> = hits
            .into_iter()
            .filter_map(|(sku, score)| {
                let view = self.view(known.get(&sku)?, &request.locale, near);
                let weight = match (near, view.deliverable) {
                    (None, _) => 1.0,
                    // A day's wait halves the preference; relevance still leads.
                    (Some(_), true) => 1.0 / (1.0 + view.delivery_hours as f32 / 24.0),
                    (Some(_), false) => UNDELIVERABLE_WEIGHT,
                };
                (!request.deliverable_only || view.deliverable).then_some((score * weight, view))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (products, next_page_token) = paged(ranked.into_iter().map(|(_, v)| v), offset, size);
        Ok(SearchProductsResponse {
            products,
            next_page_token,
        })
    }

    /// The active products of a category (and below), those that come soonest first.
    pub fn browse(
        &self,
        request: &BrowseCatalogRequest,
    ) -> Result<BrowseCatalogResponse, CatalogError> {
        let near = point(request.near.as_ref(), "near")?;
        let (offset, size) = page(&request.page_token, request.page_size)?;
        let wanted: Vec<String> = request
            .category_path
            .iter()
            .map(|c| c.trim().to_lowercase())
            .collect();
        let known = self.products.read().unwrap_or_else(PoisonError::into_inner);
        let mut subcategories: BTreeMap<String, u32> = BTreeMap::new();
        let mut views: Vec<ProductView> = known
            .values()
            .filter(|p| p.active && in_category(p, &wanted))
            .map(|p| {
                if let Some(below) = p.category_path.get(wanted.len()) {
                    *subcategories.entry(below.clone()).or_default() += 1;
                }
                self.view(p, &request.locale, near)
            })
            .collect();
        views.sort_by(|a, b| {
            let soon = |v: &ProductView| (!v.deliverable, v.delivery_hours);
            soon(a)
                .partial_cmp(&soon(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.title.cmp(&b.title))
        });
        let (products, next_page_token) = paged(views.into_iter(), offset, size);
        Ok(BrowseCatalogResponse {
            products,
            next_page_token,
            subcategories: subcategories
                .into_iter()
                .map(|(name, products)| CategoryCount { name, products })
                .collect(),
        })
    }

    /// Products for a buyer on a surface, each with why; only active products a center with
    /// stock delivers to them (where they are, else where their orders go, else anywhere in
    /// stock).
    pub fn recommend(&self, request: &RecommendRequest) -> Result<RecommendResponse, CatalogError> {
        let user_id = request.user_id.trim();
        if user_id.is_empty() {
            return Err(ApiError::invalid("user_id", "required").into());
        }
        let context = match request.surface() {
            RecommendationSurface::Home => Context::Home,
            RecommendationSurface::Product if !request.sku.trim().is_empty() => {
                Context::Product(request.sku.trim().to_owned())
            }
            RecommendationSurface::Product => {
                return Err(ApiError::invalid("sku", "required on a product page").into());
            }
            RecommendationSurface::Cart if !request.cart_skus.is_empty() => {
                Context::Cart(request.cart_skus.clone())
            }
            RecommendationSurface::Cart => {
                return Err(ApiError::invalid("cart_skus", "required for the cart").into());
            }
            RecommendationSurface::Unspecified => {
                return Err(ApiError::invalid("surface", "home, product or cart").into());
            }
        };
        if request.limit > MAX_RECOMMENDATIONS {
            return Err(ApiError::invalid("limit", "at most 50").into());
        }
        let limit = if request.limit == 0 {
            10
        } else {
            request.limit as usize
        };
        let point = point(request.near.as_ref(), "near")?.or_else(|| self.tastes.home_of(user_id));
        let known = self.products.read().unwrap_or_else(PoisonError::into_inner);
        let allowed = |sku: &str| {
            known.get(sku).is_some_and(|p| p.active)
                && match point {
                    Some(at) => self.availability.soonest(sku, at).is_some(),
                    None => self.availability.available(sku) > 0,
                }
        };
        let picked = self
            .tastes
            .recommend(user_id, point, &context, limit, allowed);
        let products = picked
            .into_iter()
            .filter_map(|pick| {
                let found = known.get(&pick.sku)?;
                let title_of = |sku: &str| {
                    known
                        .get(sku)
                        .map(|p| product::view(p, &request.locale).title)
                        .unwrap_or_else(|| sku.to_owned())
                };
                Some(Recommended {
                    product: Some(self.view(found, &request.locale, point)),
                    ..explain::explain(&pick.reason, &request.locale, title_of)
                })
            })
            .collect();
        Ok(RecommendResponse { products })
    }

    /// A buyer viewed a product or put it in the cart; `false` when they opted out.
    pub async fn report_interaction(
        &self,
        request: &ReportInteractionRequest,
    ) -> Result<bool, CatalogError> {
        let user_id = request.user_id.trim();
        if user_id.is_empty() {
            return Err(ApiError::invalid("user_id", "required").into());
        }
        let (kind, weight) = match request.kind() {
            InteractionKind::View => ("view", VIEW_WEIGHT),
            InteractionKind::AddToCart => ("add_to_cart", ADD_TO_CART_WEIGHT),
            InteractionKind::Unspecified => {
                return Err(ApiError::invalid("kind", "view or add_to_cart").into());
            }
        };
        let sku = request.sku.trim();
        if !self
            .products
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sku)
            .is_some_and(|p| p.active)
        {
            return Err(CatalogError::UnknownProduct(sku.to_owned()));
        }
        if self.tastes.is_opted_out(user_id) {
            return Ok(false);
        }
        let now = Utc::now();
        self.store.add_interaction(user_id, sku, kind, now).await?;
        self.tastes.learn_interest(user_id, sku, weight, now);
        Ok(true)
    }

    /// Turns a buyer's personalisation on or off; returns the interactions deleted.
    pub async fn set_personalization(
        &self,
        request: &SetPersonalizationRequest,
    ) -> Result<u64, CatalogError> {
        let user_id = request.user_id.trim();
        if user_id.is_empty() {
            return Err(ApiError::invalid("user_id", "required").into());
        }
        if request.enabled {
            self.store.opt_in(user_id).await?;
            self.tastes.set_opted_out(user_id, false);
            return Ok(0);
        }
        let deleted = self.store.opt_out(user_id, Utc::now()).await?;
        self.tastes.set_opted_out(user_id, true);
        Ok(deleted)
    }

    fn view(&self, found: &Product, locale: &str, near: Option<(f64, f64)>) -> ProductView {
        let mut view = product::view(found, locale);
        view.available = self.availability.available(&found.sku);
        if let Some(hours) = near.and_then(|p| self.availability.soonest(&found.sku, p)) {
            view.deliverable = true;
            view.delivery_hours = hours;
        }
        view
    }
}

fn in_category(product: &Product, wanted: &[String]) -> bool {
    product.category_path.len() >= wanted.len()
        && product
            .category_path
            .iter()
            .zip(wanted)
            .all(|(have, want)| have.to_lowercase() == *want)
}

/// A point given by the caller, checked.
fn point(given: Option<&GeoPoint>, field: &str) -> Result<Option<(f64, f64)>, CatalogError> {
    match given {
        None => Ok(None),
        Some(p) if (-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng) => {
            Ok(Some((p.lat, p.lng)))
        }
        Some(_) => Err(ApiError::invalid(field, "latitude -90..90, longitude -180..180").into()),
    }
}

/// The offset a page token stands for and the page size.
fn page(token: &str, size: u32) -> Result<(usize, usize), CatalogError> {
    let offset = if token.is_empty() {
        0
    } else {
        token
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("page_token", "not a token this service gave"))?
    };
    if size > MAX_PAGE {
        return Err(ApiError::invalid("page_size", "at most 100").into());
    }
    let size = if size == 0 { DEFAULT_PAGE } else { size };
    Ok((offset, size as usize))
}

/// One page of `items` and the token of the next (empty after the last).
fn paged(
    items: impl Iterator<Item = ProductView>,
    offset: usize,
    size: usize,
) -> (Vec<ProductView>, String) {
    let mut rest = items.skip(offset);
    let page: Vec<ProductView> = rest.by_ref().take(size).collect();
    let next = if rest.next().is_some() {
        (offset + size).to_string()
    } else {
        String::new()
    };
    (page, next)
}

/// Takes other replicas' product changes every `every` until `shutdown`.
pub async fn follow_products(catalog: Arc<Catalog>, every: Duration, shutdown: CancellationToken) {
    let mut since = Utc::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let started = Utc::now();
        match catalog.refresh(since).await {
            Ok(()) => since = started,
            Err(error) => {
                tracing::warn!(%error, "reading other replicas' product changes failed; retrying")
            }
        }
    }
}

/// When a product was last changed (for ordering replicas' writes).
fn changed_at(product: &Product) -> Option<DateTime<Utc>> {
    product.updated_at.as_ref().and_then(from_timestamp)
}
