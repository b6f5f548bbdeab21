//! gRPC handlers of `oms.inventory.v1`: decode, validate, run the operation, map errors.

use std::{future::Future, time::Duration};

use oms_platform::{
    error::{ApiError, Violations},
    idempotency::{self, IdempotentCall},
};
use oms_proto::{
    common::v1::PageResponse, inventory::v1 as pb,
    inventory::v1::inventory_service_server::InventoryService,
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::{
    domain::{InventoryError, MovementKind, audit, sync_page, validate},
    holds::{self, HoldPolicy},
    reservations::{self, hold_id},
    stock,
    store::{MovementNote, Store, entities::sku, queries},
};

/// The inventory API.
pub struct InventoryApi {
    store: Store,
    reservation_ttl: Duration,
    holds: HoldPolicy,
}

impl InventoryApi {
    /// The API over `store`.
    pub fn new(store: Store, reservation_ttl: Duration, holds: HoldPolicy) -> Self {
        Self {
            store,
            reservation_ttl,
            holds,
        }
    }
}

fn status(error: InventoryError) -> Status {
    ApiError::from(error).into()
}

/// Runs `operation` once per idempotency key: a retry returns the stored response, and of two
/// concurrent first attempts the loser returns the winner's.
async fn once<R, F, Fut>(
    store: &Store,
    call: &IdempotentCall,
    operation: F,
) -> Result<Response<R>, Status>
where
    R: Message + Default,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<R, InventoryError>>,
{
    if let Some(done) = call.replay(&store.db).await? {
        return Ok(Response::new(done));
    }
    match operation().await {
        Ok(done) => Ok(Response::new(done)),
        Err(InventoryError::Db(error)) if idempotency::is_conflict(&error) => {
            match call.replay(&store.db).await? {
                Some(done) => Ok(Response::new(done)),
                None => Err(status(InventoryError::Db(error))),
            }
        }
        Err(error) => Err(status(error)),
    }
}

/// The SKUs of a query, de-duplicated, in the order asked.
fn unique(skus: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    skus.iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect()
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn upsert_sku(
        &self,
        request: Request<pb::UpsertSkuRequest>,
    ) -> Result<Response<pb::UpsertSkuResponse>, Status> {
        let sku = validate::sku(request.get_ref().sku.as_ref())?;
        let sku = stock::upsert_sku(&self.store, &sku).await.map_err(status)?;
        Ok(Response::new(pb::UpsertSkuResponse { sku: Some(sku) }))
    }

    async fn upsert_location(
        &self,
        request: Request<pb::UpsertLocationRequest>,
    ) -> Result<Response<pb::UpsertLocationResponse>, Status> {
        let location = validate::location(request.get_ref().location.as_ref())?;
        let location = stock::upsert_location(&self.store.db, &location)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpsertLocationResponse {
            location: Some(location),
        }))
    }

    async fn receive(
        &self,
        request: Request<pb::ReceiveRequest>,
    ) -> Result<Response<pb::ReceiveResponse>, Status> {
        let request = request.into_inner();
        validate::receive(&request)?;
        let call = IdempotentCall::new("receive", &request.idempotency_key, &request);
        once(&self.store, &call, || async {
            let note = MovementNote {
                kind: MovementKind::Receipt,
                reference: &request.idempotency_key,
                reason: &request.reason,
            };
            let delta = i64::from(request.quantity);
            let level = stock::change_on_hand(
                &self.store,
                &request.sku,
                &request.location_id,
                delta,
                note,
                &call,
            )
            .await?;
            Ok(pb::ReceiveResponse { level: Some(level) })
        })
        .await
    }

    async fn adjust(
        &self,
        request: Request<pb::AdjustRequest>,
    ) -> Result<Response<pb::AdjustResponse>, Status> {
        let request = request.into_inner();
        validate::adjust(&request)?;
        let call = IdempotentCall::new("adjust", &request.idempotency_key, &request);
        once(&self.store, &call, || async {
            let note = MovementNote {
                kind: MovementKind::Adjustment,
                reference: &request.idempotency_key,
                reason: &request.reason,
            };
            let level = stock::change_on_hand(
                &self.store,
                &request.sku,
                &request.location_id,
                request.delta,
                note,
                &call,
            )
            .await?;
            Ok(pb::AdjustResponse { level: Some(level) })
        })
        .await
    }

    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::ReserveResponse>, Status> {
        let command = validate::reserve(request.get_ref())?;
        let reserved = reservations::reserve(&self.store, &command, self.reservation_ttl)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReserveResponse {
            reservation: Some(reserved.reservation),
            levels: reserved.levels,
        }))
    }

    async fn confirm_reservation(
        &self,
        request: Request<pb::ConfirmReservationRequest>,
    ) -> Result<Response<pb::ConfirmReservationResponse>, Status> {
        let request = request.into_inner();
        validate::settle(&request.reservation_id, &[], &request.idempotency_key, None)?;
        let call = IdempotentCall::new("confirm", &request.idempotency_key, &request);
        once(&self.store, &call, || async {
            let reservation =
                reservations::confirm(&self.store, &request.reservation_id, &call).await?;
            Ok(pb::ConfirmReservationResponse {
                reservation: Some(reservation),
            })
        })
        .await
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let request = request.into_inner();
        let lines = validate::settle(
            &request.reservation_id,
            &request.lines,
            &request.idempotency_key,
            None,
        )?;
        let call = IdempotentCall::new("commit", &request.idempotency_key, &request);
        once(&self.store, &call, || async {
            let reservation = reservations::settle(
                &self.store,
                &request.reservation_id,
                &lines,
                true,
                "shipped",
                &call,
            )
            .await?;
            Ok(pb::CommitResponse {
                reservation: Some(reservation),
            })
        })
        .await
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let request = request.into_inner();
        let by_order = request.reservation_id.is_empty() && !request.order_id.is_empty();
        let reservation_id = if by_order {
            validate::order_id(&request.order_id)?;
            let open = reservations::open_of_order(&self.store, &request.order_id)
                .await
                .map_err(status)?;
            match open {
                Some(id) => id,
                None => return Ok(Response::new(pb::ReleaseResponse { reservation: None })),
            }
        } else {
            request.reservation_id.clone()
        };
        let lines = validate::settle(
            &reservation_id,
            &request.lines,
            &request.idempotency_key,
            Some(&request.reason),
        )?;
        let call = IdempotentCall::new("release", &request.idempotency_key, &request);
        once(&self.store, &call, || async {
            let reason = if request.reason.is_empty() {
                "released"
            } else {
                &request.reason
            };
            let reservation =
                reservations::settle(&self.store, &reservation_id, &lines, false, reason, &call)
                    .await?;
            Ok(pb::ReleaseResponse {
                reservation: Some(reservation),
            })
        })
        .await
    }

    async fn restock(
        &self,
        request: Request<pb::RestockRequest>,
    ) -> Result<Response<pb::RestockResponse>, Status> {
        let request = request.into_inner();
        validate::restock(&request)?;
        let call = IdempotentCall::new("restock", &request.idempotency_key, &request);
        once(&self.store, &call, || {
            stock::restock(&self.store, &request, &call)
        })
        .await
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        let id = &request.get_ref().reservation_id;
        if id.is_empty() || id.len() > 80 {
            return Err(
                ApiError::invalid("reservation_id", "required, at most 80 characters").into(),
            );
        }
        let reservation = reservations::to_proto_by_id(&self.store.db, id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetReservationResponse {
            reservation: Some(reservation),
        }))
    }

    async fn get_availability(
        &self,
        request: Request<pb::GetAvailabilityRequest>,
    ) -> Result<Response<pb::GetAvailabilityResponse>, Status> {
        let request = request.into_inner();
        validate::availability(&request)?;
        let skus = unique(&request.skus);
        let hold = (!request.user_id.is_empty()).then(|| hold_id(&request.user_id));
        let items = queries::availability(
            &self.store.db,
            &skus,
            request.near.as_ref(),
            &request.location_ids,
            hold.as_deref(),
        )
        .await
        .map_err(status)?;
        Ok(Response::new(pb::GetAvailabilityResponse { items }))
    }

    async fn sync_inventory(
        &self,
        request: Request<pb::SyncInventoryRequest>,
    ) -> Result<Response<pb::SyncInventoryResponse>, Status> {
        let request = request.into_inner();
        let limit = validate::sync(&request)?;
        let mut rows =
            queries::changes_since(&self.store.db, request.since_seq, &request.skus, limit)
                .await
                .map_err(status)?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.change_seq).collect();
        let (take, has_more) = sync_page(&seqs, usize::try_from(limit).unwrap_or(usize::MAX));
        if take == 0 && has_more {
            // The first batch alone is larger than the page: return it whole.
            rows = queries::batch(&self.store.db, seqs[0], &request.skus)
                .await
                .map_err(status)?;
        } else {
            rows.truncate(take);
        }
        let next_seq = rows.last().map_or(request.since_seq, |r| r.change_seq);
        let deltas = rows
            .iter()
            .map(|r: &sku::Model| pb::StockDelta {
                sku: r.sku.clone(),
                available: r.available,
                change_seq: r.change_seq,
                version: r.version,
            })
            .collect();
        Ok(Response::new(pb::SyncInventoryResponse {
            deltas,
            next_seq,
            has_more,
        }))
    }

    async fn sync_cart(
        &self,
        request: Request<pb::SyncCartRequest>,
    ) -> Result<Response<pb::SyncCartResponse>, Status> {
        let request = request.into_inner();
        let cart = validate::cart(&request)?;
        let response = holds::sync_cart(
            &self.store,
            &request.user_id,
            &cart,
            request.near.as_ref(),
            self.holds,
        )
        .await
        .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn audit_inventory(
        &self,
        request: Request<pb::AuditInventoryRequest>,
    ) -> Result<Response<pb::AuditInventoryResponse>, Status> {
        validate::query_skus(&request.get_ref().skus, false)?;
        let (stored, ledger, active) = queries::audit_sums(&self.store.db, &request.get_ref().skus)
            .await
            .map_err(status)?;
        let mismatches = audit::mismatches(&stored, &ledger, &active);
        if !mismatches.is_empty() {
            tracing::error!(count = mismatches.len(), "inventory audit found mismatches");
        }
        Ok(Response::new(pb::AuditInventoryResponse {
            levels_checked: u32::try_from(stored.len()).unwrap_or(u32::MAX),
            mismatches,
        }))
    }

    async fn list_movements(
        &self,
        request: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("sku", &request.sku);
        if !request.location_id.is_empty() {
            v.id("location_id", &request.location_id);
        }
        let page = request.page.unwrap_or_default();
        let after = if page.page_token.is_empty() {
            0
        } else {
            page.page_token.parse::<i64>().unwrap_or_else(|_| {
                v.add("page.page_token", "not a token this service issued");
                0
            })
        };
        if page.page_size > 500 {
            v.add("page.page_size", "at most 500");
        }
        v.into_result()?;
        let size = match page.page_size {
            0 => 50,
            n => u64::from(n),
        };
        let movements = queries::movements(
            &self.store.db,
            &request.sku,
            &request.location_id,
            after,
            size,
        )
        .await
        .map_err(status)?;
        let next_page_token = if movements.len() as u64 == size {
            movements
                .last()
                .map(|m| m.movement_id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMovementsResponse {
            movements,
            page: Some(PageResponse { next_page_token }),
        }))
    }
}
