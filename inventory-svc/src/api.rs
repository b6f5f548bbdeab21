//! gRPC handlers of `oms.inventory.v1` (skeleton: every RPC answers UNIMPLEMENTED until the
//! service's issue fills it in; see the README's status table).

use oms_proto::inventory::v1::inventory_service_server::InventoryService;

/// The service's gRPC API.
pub struct InventoryApi;

#[tonic::async_trait]
impl InventoryService for InventoryApi {}
