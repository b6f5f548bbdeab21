//! The use case: one turn of a buyer's conversation — understood against the live catalog,
//! applied to the conversation, and its action run against order-svc (quote, place, cancel,
//! reorder, status) and tracking-svc (the ETA). Conversations live in this process and expire
//! after `ttl` without a turn.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use oms_platform::{error::ApiError, events::from_timestamp};
use oms_proto::{
    assistant::v1::{ConverseRequest, ConverseResponse, Draft, DraftLine, Understood},
    catalog::v1::{BrowseCatalogRequest, catalog_service_client::CatalogServiceClient},
    common::v1::{Address, DeliveryPreference, ShippingMethod},
    order::v1::{
        self as ord, CancelOrderRequest, ListOrdersRequest, OrderLineInput, PlaceOrderRequest,
        QuoteOrderRequest, order_service_client::OrderServiceClient,
    },
    tracking::v1::{GetOrderTrackingRequest, tracking_service_client::TrackingServiceClient},
};
use tonic::{Status, transport::Channel};

use crate::{
    dialogue::{Action, Conversation, Lang},
    nlu::{self, Method, Window, matching::Match, matching::Matcher, matching::ProductName},
};

/// Longest text turn accepted.
const MAX_TEXT: usize = 2_000;
/// Conversations kept at most (the oldest idle ones go first).
const MAX_SESSIONS: usize = 100_000;

/// The backends.
#[derive(Clone)]
pub struct Backends {
    pub orders: OrderServiceClient<Channel>,
    pub catalog: CatalogServiceClient<Channel>,
    pub tracking: TrackingServiceClient<Channel>,
}

/// The catalog as the assistant matches against: names by SKU (English, German).
#[derive(Default)]
struct Known {
    matcher: Matcher,
    names: HashMap<String, (String, String)>,
}

/// The assistant.
pub struct Assistant {
    backends: Backends,
    known: RwLock<Known>,
    sessions: Mutex<HashMap<(String, String), (Conversation, Instant)>>,
    ttl: Duration,
    /// When expired conversations were last swept (at most once a second, not every turn).
    swept: Mutex<Instant>,
}

fn invalid(field: &str, description: &str) -> Status {
    ApiError::invalid(field, description).into()
}

impl Assistant {
    /// An assistant with no catalog yet ([`Assistant::refresh_catalog`] reads it).
    pub fn new(backends: Backends, ttl: Duration) -> Self {
        Self {
            backends,
            known: RwLock::default(),
            sessions: Mutex::default(),
            ttl,
            swept: Mutex::new(Instant::now()),
        }
    }

    /// Reads every product's English and German title from catalog-svc.
    pub async fn refresh_catalog(&self) -> Result<usize, Status> {
        let mut titles: HashMap<String, (String, String)> = HashMap::new();
        for locale in ["en", "de"] {
            let mut token = String::new();
            loop {
                let page = self
                    .backends
                    .catalog
                    .clone()
                    .browse_catalog(BrowseCatalogRequest {
                        locale: locale.into(),
                        page_size: 100,
                        page_token: token.clone(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                for view in page.products {
                    let entry = titles.entry(view.sku).or_default();
                    if locale == "en" {
                        entry.0 = view.title;
                    } else {
                        entry.1 = view.title;
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        let products: Vec<ProductName> = titles
            .iter()
            .map(|(sku, (en, de))| ProductName {
                sku: sku.clone(),
                names: vec![en.clone(), de.clone()],
            })
            .collect();
        let count = products.len();
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = Known {
            matcher: Matcher::new(&products),
            names: titles,
        };
        Ok(count)
    }

    fn name_of(&self, sku: &str, lang: Lang) -> String {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        known
            .names
            .get(sku)
            .map(|(en, de)| match lang {
                Lang::De if !de.is_empty() => de.clone(),
                _ => en.clone(),
            })
            .unwrap_or_else(|| sku.to_owned())
    }

    /// One turn.
    pub async fn converse(&self, request: ConverseRequest) -> Result<ConverseResponse, Status> {
        let user = request.user_id.trim().to_owned();
        let session = request.session_id.trim().to_owned();
        if user.is_empty() {
            return Err(invalid("user_id", "required"));
        }
        if session.is_empty() || session.len() > 128 {
            return Err(invalid("session_id", "required, at most 128 characters"));
        }
        if request.text.trim().is_empty() || request.text.chars().count() > MAX_TEXT {
            return Err(invalid("text", "required, at most 2,000 characters"));
        }
        let lang = Lang::of(&request.locale);
        let understood = {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            nlu::understand(&request.text, &known.matcher)
        };
        let (mut conversation, turn) = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let ttl = self.ttl;
            let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
            if swept.elapsed() >= Duration::from_secs(1) {
                sessions.retain(|_, (_, used)| used.elapsed() < ttl);
                *swept = Instant::now();
            }
            drop(swept);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(key, _)| key.clone())
            {
                sessions.remove(&oldest);
            }
            // A conversation past its time starts over even before the sweep finds it.
            let (mut conversation, _) = sessions
                .remove(&(user.clone(), session.clone()))
                .filter(|(_, used)| used.elapsed() < ttl)
                .unwrap_or_else(|| (Conversation::new(&session, lang), Instant::now()));
            let turn = conversation.turn(&understood, |sku| self.name_of(sku, lang));
            (conversation, turn)
        };
        let mut reply = turn.reply.clone();
        let mut quick_replies = turn.quick_replies.clone();
        let mut order_id = String::new();
        let outcome = match &turn.action {
            Action::None => Ok(()),
            Action::Quote => match self
                .quote(&user, &request.address, &mut conversation, lang)
                .await
            {
                Ok((text, quick)) => {
                    reply = text;
                    quick_replies = quick;
                    Ok(())
                }
                // No way to deliver what was asked (the window, the place): said, not failed.
                Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                    conversation.withdraw();
                    reply = match lang {
                        Lang::En => "I can't deliver that as asked. Try another day or \"standard\".".into(),
                        Lang::De => "So kann ich das nicht liefern. Versuch einen anderen Tag oder \"Standard\".".into(),
                    };
                    Ok(())
                }
                Err(status) => {
                    conversation.withdraw();
                    Err(status)
                }
            },
            Action::Place { idempotency_key } => self
                .place(&user, &request.address, &conversation, idempotency_key)
                .await
                .map(|(order, status)| {
                    reply = match (lang, status) {
                        // A high-value order waits for the buyer's passkey, like any other.
                        (Lang::En, ord::OrderStatus::RequiresVerification) => {
                            "Almost done: confirm this order with your passkey in the app.".into()
                        }
                        (Lang::De, ord::OrderStatus::RequiresVerification) => {
                            "Fast fertig: bestätige die Bestellung mit deinem Passkey in der App."
                                .into()
                        }
                        (Lang::En, _) => {
                            format!("Ordered. Your order number ends in {}.", tail(&order))
                        }
                        (Lang::De, _) => {
                            format!("Bestellt. Deine Bestellnummer endet auf {}.", tail(&order))
                        }
                    };
                    conversation.placed();
                    order_id = order;
                }),
            Action::Cancel { sku } => {
                self.cancel(&user, sku.as_deref(), lang)
                    .await
                    .map(|(id, text)| {
                        reply = text;
                        order_id = id;
                    })
            }
            Action::Track => self.track(&user, lang).await.map(|(id, text)| {
                reply = text;
                order_id = id;
            }),
            Action::Reorder => self
                .reorder(&user, &mut conversation, lang)
                .await
                .map(|text| {
                    reply = text;
                }),
        };
        let draft = self.draft_of(&conversation, lang);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((user, session), (conversation, Instant::now()));
        outcome?;
        Ok(ConverseResponse {
            reply,
            understood: Some(understood_of(&understood)),
            draft: Some(draft),
            quick_replies,
            order_id,
        })
    }

    fn draft_of(&self, conversation: &Conversation, lang: Lang) -> Draft {
        let draft = conversation.draft();
        Draft {
            lines: draft
                .lines
                .iter()
                .map(|l| DraftLine {
                    sku: l.sku.clone(),
                    name: self.name_of(&l.sku, lang),
                    quantity: l.quantity,
                })
                .collect(),
            method: draft
                .method
                .map_or(ShippingMethod::Unspecified, method_of)
                .into(),
        }
    }

    fn lines_of(conversation: &Conversation) -> Vec<OrderLineInput> {
        conversation
            .draft()
            .lines
            .iter()
            .map(|l| OrderLineInput {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect()
    }

    async fn quote(
        &self,
        user: &str,
        address: &Option<Address>,
        conversation: &mut Conversation,
        lang: Lang,
    ) -> Result<(String, Vec<String>), Status> {
        let Some(address) = address.clone() else {
            conversation.withdraw();
            return Ok((
                match lang {
                    Lang::En => {
                        "Where should it go? Your app sends the address with each turn.".into()
                    }
                    Lang::De => "Wohin soll es gehen? Die App schickt die Adresse mit.".into(),
                },
                Vec::new(),
            ));
        };
        let method = conversation
            .draft()
            .method
            .map_or(ShippingMethod::Unspecified, method_of);
        let quoted = self
            .backends
            .orders
            .clone()
            .quote_order(QuoteOrderRequest {
                user_id: user.to_owned(),
                lines: Self::lines_of(conversation),
                destination: Some(address),
                currency_code: "EUR".into(),
                preference: Some(DeliveryPreference {
                    method: method.into(),
                    window: window_of(conversation),
                }),
            })
            .await?
            .into_inner();
        let option = quoted
            .quote
            .as_ref()
            .and_then(|q| {
                q.options
                    .iter()
                    .find(|o| method == ShippingMethod::Unspecified || o.method() == method)
            })
            .and_then(|o| o.plan.clone())
            .unwrap_or_default();
        let amount = |m: Option<&oms_proto::common::v1::Money>| {
            m.and_then(|m| m.amount.parse::<f64>().ok()).unwrap_or(0.0)
        };
        let total = amount(quoted.subtotal.as_ref()) + amount(option.shipping_total.as_ref());
        let latest = option
            .shipments
            .iter()
            .filter_map(|s| s.promised_window.and_then(|w| w.end))
            .filter_map(|t| from_timestamp(&t))
            .max();
        let promise = latest.map_or_else(String::new, |at| match lang {
            Lang::En => format!("by {}", at.format("%a %-d %b")),
            Lang::De => format!("bis {}", at.format("%d.%m.")),
        });
        let turn = conversation.read_back(&format!("{total:.2} EUR"), &promise, |sku| {
            self.name_of(sku, lang)
        });
        Ok((turn.reply, turn.quick_replies))
    }

    async fn place(
        &self,
        user: &str,
        address: &Option<Address>,
        conversation: &Conversation,
        key: &str,
    ) -> Result<(String, ord::OrderStatus), Status> {
        let Some(address) = address.clone() else {
            return Err(invalid("address", "required to place an order"));
        };
        let method = conversation
            .draft()
            .method
            .map_or(ShippingMethod::Unspecified, method_of);
        let placed = self
            .backends
            .orders
            .clone()
            .place_order(PlaceOrderRequest {
                user_id: user.to_owned(),
                idempotency_key: key.to_owned(),
                lines: Self::lines_of(conversation),
                shipping_address: Some(address),
                currency_code: "EUR".into(),
                preference: Some(DeliveryPreference {
                    method: method.into(),
                    window: window_of(conversation),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        let order = placed.order.unwrap_or_default();
        let status = order.status();
        Ok((order.order_id, status))
    }

    async fn latest_order(&self, user: &str) -> Result<Option<ord::Order>, Status> {
        let listed = self
            .backends
            .orders
            .clone()
            .list_orders(ListOrdersRequest {
                user_id: user.to_owned(),
                page: Some(oms_proto::common::v1::PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(listed.orders.into_iter().next())
    }

    async fn cancel(
        &self,
        user: &str,
        sku: Option<&str>,
        lang: Lang,
    ) -> Result<(String, String), Status> {
        let Some(order) = self.latest_order(user).await? else {
            return Ok((String::new(), no_order(lang)));
        };
        let lines = match sku {
            Some(sku) => order
                .lines
                .iter()
                .filter(|l| l.sku == sku)
                .map(|l| ord::LineQuantity {
                    line_id: l.line_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            None => Vec::new(),
        };
        self.backends
            .orders
            .clone()
            .cancel_order(CancelOrderRequest {
                order_id: order.order_id.clone(),
                user_id: user.to_owned(),
                lines,
                reason: "asked the assistant".into(),
                idempotency_key: format!(
                    "assistant-cancel-{}-{}",
                    order.order_id,
                    sku.unwrap_or("all")
                ),
            })
            .await?;
        let text = match (lang, sku) {
            (Lang::En, None) => "Your order is cancelled.".to_owned(),
            (Lang::De, None) => "Deine Bestellung ist storniert.".to_owned(),
            (Lang::En, Some(sku)) => format!("{} is cancelled.", self.name_of(sku, lang)),
            (Lang::De, Some(sku)) => format!("{} ist storniert.", self.name_of(sku, lang)),
        };
        Ok((order.order_id, text))
    }

    async fn track(&self, user: &str, lang: Lang) -> Result<(String, String), Status> {
        let Some(order) = self.latest_order(user).await? else {
            return Ok((String::new(), no_order(lang)));
        };
        let status = order
            .status()
            .as_str_name()
            .trim_start_matches("ORDER_STATUS_")
            .replace('_', " ")
            .to_lowercase();
        let tracking = self
            .backends
            .tracking
            .clone()
            .get_order_tracking(GetOrderTrackingRequest {
                order_id: order.order_id.clone(),
                user_id: user.to_owned(),
            })
            .await
            .ok()
            .map(tonic::Response::into_inner);
        let eta = tracking
            .iter()
            .flat_map(|t| &t.shipments)
            .filter_map(|s| s.eta.as_ref().and_then(|e| e.estimated_arrival))
            .filter_map(|t| from_timestamp(&t))
            .max();
        let text = match (lang, eta) {
            (Lang::En, Some(at)) => format!(
                "Your order is {status}; it should arrive at {}.",
                at.format("%H:%M on %a %-d %b")
            ),
            (Lang::En, None) => format!("Your order is {status}."),
            (Lang::De, Some(at)) => format!(
                "Deine Bestellung: {status}; Ankunft voraussichtlich {} Uhr.",
                at.format("%d.%m. %H:%M")
            ),
            (Lang::De, None) => format!("Deine Bestellung: {status}."),
        };
        Ok((order.order_id, text))
    }

    async fn reorder(
        &self,
        user: &str,
        conversation: &mut Conversation,
        lang: Lang,
    ) -> Result<String, Status> {
        let Some(order) = self.latest_order(user).await? else {
            return Ok(no_order(lang));
        };
        let lines: Vec<(String, u32)> = order
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity))
            .collect();
        conversation.reorder(&lines);
        Ok(match lang {
            Lang::En => "Your last order is in the cart again. Say \"place the order\" when ready.".into(),
            Lang::De => "Deine letzte Bestellung liegt wieder im Warenkorb. Sag \"bestellen\", wenn du so weit bist.".into(),
        })
    }
}

/// The delivery window the buyer asked for, as the planner takes it.
fn window_of(conversation: &Conversation) -> Option<oms_proto::common::v1::TimeWindow> {
    let window = conversation.draft().window?;
    let (start, end) = crate::when::interval(window, chrono::Utc::now());
    Some(oms_proto::common::v1::TimeWindow {
        start: Some(oms_platform::events::to_timestamp(start)),
        end: Some(oms_platform::events::to_timestamp(end)),
    })
}

fn no_order(lang: Lang) -> String {
    match lang {
        Lang::En => "You have no orders yet.".into(),
        Lang::De => "Du hast noch keine Bestellung.".into(),
    }
}

/// The last characters of an order id, for reading out.
fn tail(order_id: &str) -> String {
    order_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn method_of(method: Method) -> ShippingMethod {
    match method {
        Method::Standard => ShippingMethod::Standard,
        Method::Express => ShippingMethod::Express,
        Method::SameDay => ShippingMethod::SameDay,
    }
}

fn understood_of(understood: &nlu::Interpretation) -> Understood {
    let mut slots = HashMap::new();
    match &understood.slots.product {
        Some(Match::One(sku)) => {
            slots.insert("sku".to_owned(), sku.clone());
        }
        Some(Match::Ambiguous(skus)) => {
            slots.insert("sku".to_owned(), skus.join("|"));
        }
        None => {}
    }
    if let Some(q) = understood.slots.quantity {
        slots.insert("quantity".to_owned(), q.to_string());
    }
    if let Some(m) = understood.slots.method {
        slots.insert("method".to_owned(), format!("{m:?}").to_lowercase());
    }
    if let Some(w) = understood.slots.window {
        let text = match w {
            Window::Tomorrow => "tomorrow".to_owned(),
            Window::OnWeekday(d) => format!("weekday {d}"),
            Window::BeforeHour(h) => format!("before {h}:00"),
        };
        slots.insert("window".to_owned(), text);
    }
    Understood {
        intent: understood.intent.name().to_owned(),
        slots,
        confidence: understood.confidence,
    }
}
