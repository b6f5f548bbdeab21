//! The `oms` binary: `oms dev` starts the whole mesh on its ports, answers health and
//! reflection on every service, and stops cleanly on SIGTERM; bad settings are clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{OmsProcess, free_port_range};
use futures::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const SERVICES: [(&str, u16); 5] = [
    ("oms.mobile.v1.MobileOrderService", 0),
    ("oms.order.v1.OrderService", 1),
    ("oms.inventory.v1.InventoryService", 2),
    ("oms.fulfillment.v1.FulfillmentService", 3),
    ("oms.tracking.v1.TrackingService", 4),
];

async fn channel(url: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn listed_services(url: String) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(url).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

// Multi-threaded: the blocking wait for the exit must not stall the clients' connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mesh_serves_health_and_reflection_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let base = free_port_range(5);
    let mut oms = OmsProcess::spawn(&[
        "dev",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--ports-from",
        &base.to_string(),
        "--metrics-listen",
        "off",
    ]);
    oms.wait_for_line("OMS mesh is up", Duration::from_secs(60));

    let gateway = format!("http://127.0.0.1:{base}");
    let listed = listed_services(gateway.clone()).await;
    for (name, _) in SERVICES {
        assert!(
            listed.iter().any(|s| s == name),
            "{name} missing from {listed:?}"
        );
    }
    for (name, offset) in SERVICES {
        let url = format!("http://127.0.0.1:{}", base + offset);
        let mut health = HealthClient::new(channel(url).await);
        for service in ["", name] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(
                status,
                ServingStatus::Serving as i32,
                "{name} / {service:?}"
            );
        }
    }
    for service in ["order", "inventory", "fulfillment", "tracking"] {
        assert!(
            data.path().join(format!("{service}.db")).exists(),
            "{service}.db"
        );
    }

    let status = oms.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status}:\n{}", oms.output());
    assert!(!oms.output().contains("panicked"), "{}", oms.output());
}

#[test]
fn a_bad_database_url_is_a_clear_error_at_start() {
    let mut oms = OmsProcess::spawn(&[
        "serve",
        "order",
        "--database-url",
        "mysql://nowhere/orders",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
    ]);
    let status = oms.wait(Duration::from_secs(30));
    assert!(!status.success());
    let output = oms.output();
    assert!(output.contains("is not supported"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}

#[test]
fn an_unreachable_nats_is_a_clear_error_at_start() {
    let dead = oms_platform::testing::free_port();
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/inventory.db", data.path().display());
    let nats = format!("nats://127.0.0.1:{dead}");
    let mut oms = OmsProcess::spawn(&[
        "serve",
        "inventory",
        "--nats-url",
        &nats,
        "--nats-connect-timeout",
        "2s",
        "--database-url",
        &database,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
    ]);
    let status = oms.wait(Duration::from_secs(30));
    assert!(!status.success());
    let output = oms.output();
    assert!(output.contains("cannot connect to NATS"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["dev", "--help"],
        vec!["serve", "--help"],
        vec!["serve", "gateway", "--help"],
        vec!["serve", "order", "--help"],
        vec!["serve", "inventory", "--help"],
        vec!["serve", "fulfillment", "--help"],
        vec!["serve", "tracking", "--help"],
        vec!["eta", "--help"],
        vec!["eta", "simulate", "--help"],
        vec!["eta", "train", "--help"],
        vec!["eta", "evaluate", "--help"],
        vec!["eta", "export", "--help"],
    ] {
        let mut oms = OmsProcess::spawn(&args);
        let status = oms.wait(Duration::from_secs(10));
        assert!(status.success(), "{args:?}: {}", oms.output());
        assert!(oms.output().contains("Usage"), "{args:?}");
    }
}

#[test]
fn eta_simulates_trains_and_evaluates_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.csv");
    let model = dir.path().join("model.json");
    let history_arg = history.to_str().unwrap();
    let model_arg = model.to_str().unwrap();
    for args in [
        vec![
            "eta",
            "simulate",
            "--rows",
            "3000",
            "--seed",
            "4",
            "--out",
            history_arg,
        ],
        vec![
            "eta",
            "train",
            "--history",
            history_arg,
            "--out",
            model_arg,
            "--iterations",
            "60",
        ],
    ] {
        let mut oms = OmsProcess::spawn(&args);
        let status = oms.wait(Duration::from_secs(120));
        assert!(status.success(), "{args:?}: {}", oms.output());
    }
    let mut oms = OmsProcess::spawn(&[
        "eta",
        "evaluate",
        "--history",
        history_arg,
        "--iterations",
        "60",
        "--json",
    ]);
    let status = oms.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", oms.output());
    let output = oms.output();
    let line = output.lines().find(|l| l.starts_with('{')).unwrap();
    let figures: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(figures["rows"], 3000);
    assert_eq!(figures["held_out"], 600);
    for side in ["model", "baseline"] {
        for key in ["mae_min", "p90_abs_err_min", "p90_coverage"] {
            assert!(figures[side][key].is_f64(), "{side}.{key}: {figures}");
        }
    }
    assert!(
        figures["model"]["mae_min"].as_f64() < figures["baseline"]["mae_min"].as_f64(),
        "{figures}"
    );
    // A malformed history is a clear error naming the line.
    std::fs::write(&history, "dispatched_at,origin_lat\nyesterday,52\n").unwrap();
    let mut oms = OmsProcess::spawn(&["eta", "evaluate", "--history", history_arg]);
    let status = oms.wait(Duration::from_secs(30));
    assert!(!status.success());
    assert!(oms.output().contains("line 2"), "{}", oms.output());
}
