//! Fulfillment end to end over gRPC, with a real inventory-svc, both on PostgreSQL, over NATS
//! JetStream: centers become inventory locations, a plan splits an order, inventory reserves it,
//! the order's confirmation dispatches shipments to carriers, carrier webhooks move them, and
//! every move reaches the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use oms_platform::{
    bus::{self, Area, ConsumerSpec, EventBus},
    config::{self, BusArgs, DatabaseArgs},
    events::envelope,
    runtime::{RunningService, ServiceContext},
    sample::{self, eur},
    testing::{NatsServer, TestDatabase, namespace},
};
use oms_proto::{
    common::v1::ItemQuantity,
    events::v1::{OrderStatusChanged, envelope::Payload},
    fulfillment::v1::{self as pb, fulfillment_service_client::FulfillmentServiceClient},
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    order::v1::{Order, OrderShipment, OrderStatus},
};
use tonic::{Code, transport::Channel};

struct Mesh {
    fulfillment: FulfillmentServiceClient<Channel>,
    inventory: InventoryServiceClient<Channel>,
    bus: Arc<dyn EventBus>,
    ctx: ServiceContext,
    running: Vec<RunningService>,
    _nats: NatsServer,
    _databases: (TestDatabase, TestDatabase),
}

async fn channel(url: String) -> Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn start() -> Mesh {
    oms_platform::telemetry::init_for_tests();
    let nats = NatsServer::start().await;
    let bus = bus::connect(&BusArgs {
        nats_url: Some(nats.url()),
        namespace: namespace(),
        ..BusArgs::default()
    })
    .await
    .unwrap();
    let ctx = ServiceContext::new(bus.clone());
    let (inventory_db, fulfillment_db) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    );

    let mut inventory_config: oms_inventory_svc::Config = config::defaults().unwrap();
    inventory_config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    inventory_config.database = DatabaseArgs::new(&inventory_db.url);
    let inventory = oms_inventory_svc::start(inventory_config, ctx.clone())
        .await
        .unwrap();

    let mut fulfillment_config: oms_fulfillment_svc::Config = config::defaults().unwrap();
    fulfillment_config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    fulfillment_config.database = DatabaseArgs::new(&fulfillment_db.url);
    fulfillment_config.inventory_url = inventory.url();
    fulfillment_config.quote_ttl = Duration::from_secs(2);
    let fulfillment = oms_fulfillment_svc::start(fulfillment_config, ctx.clone())
        .await
        .unwrap();

    Mesh {
        fulfillment: FulfillmentServiceClient::new(channel(fulfillment.url()).await),
        inventory: InventoryServiceClient::new(channel(inventory.url()).await),
        bus,
        ctx,
        running: vec![fulfillment, inventory],
        _nats: nats,
        _databases: (inventory_db, fulfillment_db),
    }
}

/// The sample German center, all three methods, 500 parcels a day.
fn center(id: &str, lat: f64, lng: f64) -> pb::FulfillmentCenter {
    pb::FulfillmentCenter {
        daily_capacity: 500,
        ..sample::german_center(id, lat, lng, false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reserve_dispatch_and_carrier_updates_reach_the_bus() {
    let mut mesh = start().await;
    for (id, lat, lng) in [
        ("fc-berlin", 52.52, 13.40),
        ("fc-munich", 48.14, 11.58),
        ("fc-hamburg", 53.55, 9.99),
    ] {
        let mut definition = center(id, lat, lng);
        if id == "fc-hamburg" {
            // Hamburg ships express only, so both carriers' formats are exercised.
            definition.methods.retain(|m| m.method == 2);
        }
        mesh.fulfillment
            .upsert_center(pb::UpsertCenterRequest {
                center: Some(definition),
            })
            .await
            .unwrap();
    }
    for (sku, hs) in [("SHOE-1", "640399"), ("TEE-1", "610910")] {
        mesh.inventory
            .upsert_sku(inv::UpsertSkuRequest {
                sku: Some(inv::Sku {
                    sku: sku.into(),
                    name: sku.into(),
                    weight_grams: 700,
                    hs_code: hs.into(),
                    origin_country: "PT".into(),
                    low_stock_threshold: 0,
                }),
            })
            .await
            .unwrap();
    }
    // Centers reach inventory through the bus; receiving stock there works once they have.
    let stock = [
        ("SHOE-1", "fc-berlin", 1),
        ("SHOE-1", "fc-munich", 5),
        ("TEE-1", "fc-hamburg", 3),
    ];
    for (sku, location, quantity) in stock {
        let request = inv::ReceiveRequest {
            sku: sku.into(),
            location_id: location.into(),
            quantity,
            reason: "initial stock".into(),
            idempotency_key: format!("seed-{sku}-{location}"),
        };
        let mut received = false;
        for _ in 0..100 {
            match mesh.inventory.receive(request.clone()).await {
                Ok(_) => {
                    received = true;
                    break;
                }
                Err(status) if status.code() == Code::NotFound => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(status) => panic!("{status:?}"),
            }
        }
        assert!(received, "{location} never became an inventory location");
    }

    // Plan: no single center holds 2 shoes and a tee, so the order splits in two.
    let lines = vec![
        pb::PlanLine {
            sku: "SHOE-1".into(),
            quantity: 2,
            unit_price: eur("89.90"),
        },
        pb::PlanLine {
            sku: "TEE-1".into(),
            quantity: 1,
            unit_price: eur("19.90"),
        },
    ];
    let plan = mesh
        .fulfillment
        .plan_fulfillment(pb::PlanFulfillmentRequest {
            lines: lines.clone(),
            destination: Some(sample::berlin_address()),
            preference: None,
            currency_code: "EUR".into(),
            exclude_center_ids: vec![],
            user_id: "ada".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(plan.shipments.len(), 2, "{plan:#?}");
    assert!(
        plan.reason.starts_with("split into 2 shipments"),
        "{}",
        plan.reason
    );
    let by_center: BTreeMap<&str, &pb::PlannedShipment> = plan
        .shipments
        .iter()
        .map(|s| (s.center_id.as_str(), s))
        .collect();
    assert_eq!(
        by_center["fc-munich"].items,
        [ItemQuantity {
            sku: "SHOE-1".into(),
            quantity: 2
        }]
    );
    assert_eq!(
        by_center["fc-hamburg"].items,
        [ItemQuantity {
            sku: "TEE-1".into(),
            quantity: 1
        }]
    );
    for shipment in &plan.shipments {
        assert!(!shipment.reason.is_empty());
        let landed = shipment.landed_cost.as_ref().unwrap();
        assert!(!landed.cross_border, "DE to DE is domestic");
        assert_ne!(
            landed.tax.as_ref().unwrap().amount,
            "0.00",
            "German VAT applies"
        );
    }

    // Reserve what the plan allocated.
    let reservation = mesh
        .inventory
        .reserve(inv::ReserveRequest {
            order_id: "ord-1".into(),
            lines: plan
                .shipments
                .iter()
                .flat_map(|s| {
                    s.items.iter().map(|i| inv::ReservationLine {
                        sku: i.sku.clone(),
                        location_id: s.center_id.clone(),
                        quantity: i.quantity,
                    })
                })
                .collect(),
            ttl_seconds: 600,
            idempotency_key: "reserve-ord-1".into(),
            user_id: "ada".into(),
            until_released: false,
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(reservation.lines.len(), 2);

    // The order is confirmed (as order-svc publishes it): fulfillment dispatches.
    let order = Order {
        order_id: "ord-1".into(),
        user_id: "ada".into(),
        status: OrderStatus::Confirmed.into(),
        shipping_address: Some(sample::berlin_address()),
        shipments: plan
            .shipments
            .iter()
            .enumerate()
            .map(|(i, s)| OrderShipment {
                shipment_id: format!("shp-ord-1-{i}"),
                center_id: s.center_id.clone(),
                method: s.method,
                carrier: s.carrier.clone(),
                items: s.items.clone(),
                promised_window: s.promised_window,
                shipping_price: s.shipping_price.clone(),
                landed_cost: s.landed_cost.clone(),
                ..Default::default()
            })
            .collect(),
        version: 2,
        ..Default::default()
    };
    let confirmed = envelope(
        Area::Order,
        "ord-1",
        "status_changed",
        "ada",
        Payload::OrderStatusChanged(OrderStatusChanged {
            order: Some(order),
            previous_status: OrderStatus::Pending.into(),
            note: String::new(),
        }),
    )
    .unwrap();
    mesh.bus.publish(&confirmed).await.unwrap();
    mesh.bus.publish(&confirmed).await.unwrap(); // a repeat changes nothing
    let shipments = wait_for_shipments(&mut mesh, "ord-1", 2).await;
    for shipment in &shipments {
        assert_eq!(shipment.status, pb::ShipmentStatus::HandedToCarrier as i32);
        assert!(!shipment.tracking_number.is_empty());
    }

    // Carriers report in their own formats; repeats and stale reports change nothing.
    let mut applied = 0;
    for shipment in &shipments {
        let payloads: Vec<Vec<u8>> = match shipment.carrier.as_str() {
            "swiftship" => ["PICKED_UP", "OUT_FOR_DELIVERY", "DELIVERED"]
                .iter()
                .enumerate()
                .map(|(i, status)| {
                    format!(r#"{{"event_id":"{}-{i}","tracking_number":"{}","status":"{status}","occurred_at":"2026-11-26T0{i}:00:00Z"}}"#, shipment.shipment_id, shipment.tracking_number).into_bytes()
                })
                .collect(),
            _ => vec![
                format!(r#"{{"awb":"{}","scans":[{{"id":"{}-pu","code":"PU","ts":1764115200,"geo":"48.14,11.58"}},{{"id":"{}-od","code":"OD","ts":1764158400}}]}}"#, shipment.tracking_number, shipment.shipment_id, shipment.shipment_id).into_bytes(),
                format!(r#"{{"awb":"{}","scans":[{{"id":"{}-dl","code":"DL","ts":1764162000,"remark":"Front door"}}]}}"#, shipment.tracking_number, shipment.shipment_id).into_bytes(),
            ],
        };
        for payload in &payloads {
            let answer = mesh
                .fulfillment
                .report_carrier_update(pb::ReportCarrierUpdateRequest {
                    carrier: shipment.carrier.clone(),
                    payload: payload.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(answer.applied);
            applied += 1;
        }
        let again = mesh
            .fulfillment
            .report_carrier_update(pb::ReportCarrierUpdateRequest {
                carrier: shipment.carrier.clone(),
                payload: payloads[0].clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!again.applied, "a repeated report is applied once");
        assert_eq!(
            again.shipment.unwrap().status,
            pb::ShipmentStatus::Delivered as i32
        );
    }
    assert!(applied >= 4);
    let bad = mesh
        .fulfillment
        .report_carrier_update(pb::ReportCarrierUpdateRequest {
            carrier: "swiftship".into(),
            payload: b"{\"oops\":1}".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // Every move reached the bus, in order per shipment.
    let mut stream = mesh
        .bus
        .consume(ConsumerSpec::replay(Area::Fulfillment, 1))
        .await
        .unwrap();
    let mut seen: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.values().map(Vec::len).sum::<usize>() < 8 && tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        else {
            continue;
        };
        if let Some(Payload::ShipmentStatusChanged(changed)) = &delivery.envelope.payload {
            let shipment = changed.shipment.as_ref().unwrap();
            assert_eq!(
                delivery.envelope.user_id, "ada",
                "shipment events go to the buyer's stream"
            );
            seen.entry(shipment.shipment_id.clone())
                .or_default()
                .push(shipment.status);
        }
        delivery.ack().await.unwrap();
    }
    use pb::ShipmentStatus::*;
    // Created and booked with the carrier in one transaction: one event, both in its history.
    let expected = vec![
        HandedToCarrier as i32,
        PickedUp as i32,
        OutForDelivery as i32,
        Delivered as i32,
    ];
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (shipment, statuses) in &seen {
        assert_eq!(statuses, &expected, "{shipment}");
    }

    // The centers that shipped count the load.
    let munich = mesh
        .fulfillment
        .get_center(pb::GetCenterRequest {
            center_id: "fc-munich".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(munich.center.unwrap().current_load, 1);
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_price_each_method_and_expire() {
    let mut mesh = start().await;
    mesh.fulfillment
        .upsert_center(pb::UpsertCenterRequest {
            center: Some(center("fc-berlin", 52.52, 13.40)),
        })
        .await
        .unwrap();
    mesh.inventory
        .upsert_sku(inv::UpsertSkuRequest {
            sku: Some(inv::Sku {
                sku: "A".into(),
                name: "A".into(),
                weight_grams: 400,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    for _ in 0..100 {
        let received = mesh
            .inventory
            .receive(inv::ReceiveRequest {
                sku: "A".into(),
                location_id: "fc-berlin".into(),
                quantity: 5,
                reason: "stock".into(),
                idempotency_key: "seed".into(),
            })
            .await;
        if received.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let quote = mesh
        .fulfillment
        .quote_delivery(pb::QuoteDeliveryRequest {
            lines: vec![pb::PlanLine {
                sku: "A".into(),
                quantity: 1,
                unit_price: eur("10.00"),
            }],
            destination: Some(sample::berlin_address()),
            currency_code: "EUR".into(),
            preference: None,
            user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .quote
        .unwrap();
    let methods: Vec<i32> = quote.options.iter().map(|o| o.method).collect();
    assert_eq!(
        methods,
        [1, 2, 3],
        "standard, express and same-day (within 60 km)"
    );
    let price = |i: usize| {
        quote.options[i]
            .plan
            .as_ref()
            .unwrap()
            .shipping_total
            .as_ref()
            .unwrap()
            .amount
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        price(0) < price(1) && price(1) < price(2),
        "faster costs more"
    );
    let fetched = mesh
        .fulfillment
        .get_quote(pb::GetQuoteRequest {
            quote_id: quote.quote_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.quote.unwrap(), quote);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = mesh
        .fulfillment
        .get_quote(pb::GetQuoteRequest {
            quote_id: quote.quote_id,
        })
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition);
    assert!(
        expired.message().contains("expired"),
        "{}",
        expired.message()
    );
    stop(mesh).await;
}

async fn wait_for_shipments(mesh: &mut Mesh, order_id: &str, count: usize) -> Vec<pb::Shipment> {
    for _ in 0..200 {
        let shipments = mesh
            .fulfillment
            .list_shipments(pb::ListShipmentsRequest {
                order_id: order_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .shipments;
        if shipments.len() >= count {
            return shipments;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order_id} was not dispatched");
}

async fn stop(mesh: Mesh) {
    mesh.ctx.shutdown.cancel();
    for running in mesh.running {
        running.wait().await.unwrap();
    }
}
