//! What inventory consumes: fulfillment centers become stock locations, so an operator creates
//! a center once (in fulfillment-svc) and stock can be received there.

use async_trait::async_trait;
use oms_platform::consumer::{EventHandler, HandlerError};
use oms_proto::{
    events::v1::{Envelope, envelope::Payload},
    inventory::v1::Location,
};
use sea_orm::DatabaseTransaction;

use crate::{domain::validate, stock};

/// Registers a location for every center fulfillment announces.
pub struct CenterLocations;

#[async_trait]
impl EventHandler for CenterLocations {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let Some(Payload::CenterUpserted(upserted)) = &event.payload else {
            return Ok(());
        };
        let Some(center) = &upserted.center else {
            return Err(HandlerError::Reject("center event without a center".into()));
        };
        let location = Location {
            location_id: center.center_id.clone(),
            name: center.name.clone(),
            point: center.point,
            country_code: center.country_code.clone(),
        };
        let location =
            validate::location(Some(&location)).map_err(|e| HandlerError::Reject(e.to_string()))?;
        stock::upsert_location(txn, &location)
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))?;
        Ok(())
    }
}
