//! The OMS contracts (proto/oms/**), generated at build time without a system `protoc`.
//!
//! Modules mirror the proto packages: `oms_proto::order::v1::order_service_client`, …
//! [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.
#![allow(
    missing_docs,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

/// The encoded `FileDescriptorSet` of every OMS proto (for tonic-reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("oms_descriptor");

/// `oms.common.v1`: money, geo points, addresses, windows, paging.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("oms.common.v1");
    }
}

/// `oms.mobile.v1`: the public API the gateway serves to the mobile SDK.
pub mod mobile {
    pub mod v1 {
        tonic::include_proto!("oms.mobile.v1");
    }
}

/// `oms.order.v1`: the order service.
pub mod order {
    pub mod v1 {
        tonic::include_proto!("oms.order.v1");
    }
}

/// `oms.inventory.v1`: the inventory service.
pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("oms.inventory.v1");
    }
}

/// `oms.fulfillment.v1`: the fulfillment service.
pub mod fulfillment {
    pub mod v1 {
        tonic::include_proto!("oms.fulfillment.v1");
    }
}

/// `oms.tracking.v1`: the tracking service.
pub mod tracking {
    pub mod v1 {
        tonic::include_proto!("oms.tracking.v1");
    }
}

/// `oms.assistant.v1`: the ordering assistant.
pub mod assistant {
    pub mod v1 {
        tonic::include_proto!("oms.assistant.v1");
    }
}

/// `oms.catalog.v1`: the catalog service.
pub mod catalog {
    pub mod v1 {
        tonic::include_proto!("oms.catalog.v1");
    }
}

/// `oms.events.v1`: payloads published on the bus.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("oms.events.v1");
    }
}

/// Fully qualified service names, as reflection and health checks know them.
pub mod service_names {
    pub const MOBILE: &str = "oms.mobile.v1.MobileOrderService";
    pub const ORDER: &str = "oms.order.v1.OrderService";
    pub const INVENTORY: &str = "oms.inventory.v1.InventoryService";
    pub const FULFILLMENT: &str = "oms.fulfillment.v1.FulfillmentService";
    pub const TRACKING: &str = "oms.tracking.v1.TrackingService";
    pub const CATALOG: &str = "oms.catalog.v1.CatalogService";
    pub const ASSISTANT: &str = "oms.assistant.v1.AssistantService";
}
