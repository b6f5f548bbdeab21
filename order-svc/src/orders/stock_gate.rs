//! The stock gate in front of every placement: carts for SKUs the stock view knows to be sold
//! out are refused at once, without writing anything; carts for the last units wait in line
//! behind the placements of this process that may take them (`domain::admission` decides).
//!
//! The view learns a SKU by one full read from inventory (one at a time, however many buyers
//! ask), then from inventory's level events and from the levels each reservation reports; it
//! forgets a SKU whose stock this service gives back, so the next buyer asks inventory.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use oms_platform::stock_view::StockView;
use oms_proto::inventory::v1::{
    self as inv, StockLevel, inventory_service_client::InventoryServiceClient,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::domain::{
    IntakeLine, OrderError,
    admission::{self, Verdict, Want},
};

/// One SKU's placements under way and the carts waiting for them.
#[derive(Default)]
struct Line {
    /// Units placements are taking now.
    under_way: i64,
    /// Carts waiting, first come first served.
    waiting: VecDeque<oneshot::Sender<()>>,
}

/// The gate.
pub struct StockGate {
    view: Arc<StockView>,
    inventory: InventoryServiceClient<Channel>,
    lines: Mutex<HashMap<String, Line>>,
    /// One full read at a time: a crowd asking about a SKU the view does not know yet
    /// waits for the first read instead of each sending one.
    reading: tokio::sync::Mutex<()>,
    /// A cart waits at most this long, then goes on to inventory.
    longest_wait: Duration,
}

/// Units a placement has under way; handed back when dropped.
pub struct Admitted {
    gate: Arc<StockGate>,
    units: Vec<(String, i64)>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.finished(&self.units);
    }
}

impl StockGate {
    /// A gate over `view`, reading unknown SKUs from `inventory`.
    pub fn new(
        view: Arc<StockView>,
        inventory: InventoryServiceClient<Channel>,
        longest_wait: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            view,
            inventory,
            lines: Mutex::default(),
            reading: tokio::sync::Mutex::new(()),
            longest_wait,
        })
    }

    /// Lets the cart on to inventory, makes it wait for placements under way, or refuses it
    /// when a SKU is sold out everywhere.
    pub async fn admit(self: &Arc<Self>, lines: &[IntakeLine]) -> Result<Admitted, OrderError> {
        let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
        for line in lines {
            *wanted.entry(line.sku.as_str()).or_default() += i64::from(line.quantity);
        }
        let deadline = tokio::time::Instant::now() + self.longest_wait;
        loop {
            self.read_unknown(wanted.keys().copied()).await;
            let woken = {
                let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
                let wants: Vec<Want<'_>> = wanted
                    .iter()
                    .map(|(sku, units)| Want {
                        sku,
                        units: *units,
                        known: self.view.available(sku),
                        under_way: lines.get(*sku).map_or(0, |l| l.under_way),
                    })
                    .collect();
                match admission::decide(&wants) {
                    Verdict::Admit => return Ok(self.take(&mut lines, &wanted)),
                    Verdict::SoldOut(skus) => {
                        return Err(OrderError::Unfulfillable {
                            message: format!("sold out: {}", skus.join(", ")),
                            violations: admission::sold_out_violations(&skus),
                        });
                    }
                    Verdict::Wait { sku } => {
                        let (wake, woken) = oneshot::channel();
                        lines.entry(sku).or_default().waiting.push_back(wake);
                        woken
                    }
                }
            };
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                // Waited long enough: inventory decides.
                let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
                return Ok(self.take(&mut lines, &wanted));
            }
        }
    }

    fn take(
        self: &Arc<Self>,
        lines: &mut HashMap<String, Line>,
        wanted: &BTreeMap<&str, i64>,
    ) -> Admitted {
        for (sku, units) in wanted {
            lines.entry((*sku).to_owned()).or_default().under_way += units;
        }
        Admitted {
            gate: self.clone(),
            units: wanted
                .iter()
                .map(|(sku, units)| ((*sku).to_owned(), *units))
                .collect(),
        }
    }

    /// A placement finished: its units are no longer under way, and carts that may now go on
    /// (free units, or nothing under way any more to wait for) are woken.
    fn finished(&self, units: &[(String, i64)]) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        for (sku, taken) in units {
            if let Some(line) = lines.get_mut(sku) {
                line.under_way -= taken;
            }
            self.wake(&mut lines, sku);
        }
        lines.retain(|_, line| line.under_way > 0 || !line.waiting.is_empty());
    }

    /// Wakes as many waiting carts of `sku` as there are free units (each wants at least
    /// one), or all of them once it is sold out or nothing is under way.
    fn wake(&self, lines: &mut HashMap<String, Line>, sku: &str) {
        let Some(line) = lines.get_mut(sku) else {
            return;
        };
        let known = self.view.available(sku);
        let free = known.map_or(i64::MAX, |known| known - line.under_way);
        let wake = if line.under_way <= 0 || known == Some(0) {
            line.waiting.len()
        } else {
            usize::try_from(free.max(0))
                .unwrap_or(usize::MAX)
                .min(line.waiting.len())
        };
        for waiter in line.waiting.drain(..wake) {
            // A cart that stopped waiting (its caller went away) needs no wake-up.
            let _ = waiter.send(());
        }
    }

    /// The view changed (a level event): carts waiting for SKUs with free units may go on.
    pub fn view_changed(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let skus: Vec<String> = lines.keys().cloned().collect();
        for sku in skus {
            self.wake(&mut lines, &sku);
        }
    }

    /// Levels a reservation reported.
    pub fn learn(&self, levels: &[StockLevel]) {
        for level in levels {
            self.view.learn(level);
        }
    }

    /// Stock of `skus` was given back through this service: the next buyer asks inventory.
    pub fn forget<'a>(&self, skus: impl IntoIterator<Item = &'a str>) {
        for sku in skus {
            self.view.forget(sku);
        }
        self.view_changed();
    }

    /// Reads the SKUs the view cannot speak about, while it follows level events (a read
    /// is kept fresh only then). A failed read leaves them unknown: inventory decides.
    async fn read_unknown<'a>(&self, skus: impl Iterator<Item = &'a str>) {
        if !self.view.is_live() {
            return;
        }
        let unknown = |skus: &[&'a str]| -> Vec<String> {
            skus.iter()
                .filter(|sku| self.view.available(sku).is_none())
                .map(|sku| (*sku).to_owned())
                .collect()
        };
        let skus: Vec<&str> = skus.collect();
        if unknown(&skus).is_empty() {
            return;
        }
        let _one_at_a_time = self.reading.lock().await;
        let unknown = unknown(&skus);
        if unknown.is_empty() {
            return;
        }
        let request = inv::GetAvailabilityRequest {
            skus: unknown,
            ..Default::default()
        };
        let Ok(answer) = self.inventory.clone().get_availability(request).await else {
            return;
        };
        for item in answer.into_inner().items {
            let Some(sku) = item.sku else { continue };
            let levels: Vec<StockLevel> = item
                .locations
                .iter()
                .map(|l| StockLevel {
                    sku: sku.sku.clone(),
                    location_id: l.location_id.clone(),
                    on_hand: l.on_hand,
                    reserved: l.reserved,
                    available: l.available,
                    version: l.version,
                    change_seq: 0,
                })
                .collect();
            self.view.learn_all(&sku.sku, &levels);
        }
    }
}

/// Wakes waiting carts whenever the view learns something new from level events.
pub async fn watch_view(gate: Arc<StockGate>, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = gate.view.changed() => gate.view_changed(),
        }
    }
}
