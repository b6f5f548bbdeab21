//! `oms bench assistant`: text turns per second and their latency. catalog-svc (SQLite, the
//! in-process bus) and assistant-svc run in this process; the catalog holds the labelled set's
//! products; virtual buyers each keep a conversation and say the labelled utterances that need
//! no other service (adding, removing, changing, delivery, the cart, undo, repeat — placing,
//! tracking and cancelling call order-svc, whose latency `oms bench orders` measures).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use oms::mesh;
use oms_assistant_svc::labelled;
use oms_platform::{
    bus::memory::InProcessBus,
    config::{self, DatabaseArgs},
    runtime::ServiceContext,
};
use oms_proto::{
    assistant::v1::{ConverseRequest, assistant_service_client::AssistantServiceClient},
    catalog::v1::{self as cat, catalog_service_client::CatalogServiceClient},
};

use super::{Load, drive};

#[derive(Args, Debug)]
pub struct AssistantBench {
    /// Turns in all.
    #[arg(long, default_value_t = 20_000)]
    turns: usize,
    /// Conversations talking at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// Intents whose turns the assistant answers on its own.
const LOCAL: [&str; 9] = [
    "add_item",
    "remove_item",
    "set_quantity",
    "set_delivery",
    "show_cart",
    "undo",
    "no",
    "repeat",
    "unknown",
];

pub async fn run(bench: AssistantBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("oms-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let ctx = ServiceContext::new(Arc::new(InProcessBus::default()));
    let mut catalog: oms_catalog_svc::Config = config::defaults()?;
    catalog.server.listen = "127.0.0.1:0".parse().ok();
    catalog.database = DatabaseArgs::new(format!("sqlite://{}/catalog.db", dir.display()));
    let catalog = oms_catalog_svc::start(catalog, ctx.clone()).await?;
    let mut assistant: oms_assistant_svc::Config = config::defaults()?;
    assistant.server.listen = "127.0.0.1:0".parse().ok();
    assistant.catalog_url = catalog.url();
    assistant.catalog_refresh = std::time::Duration::from_millis(200);
    let assistant = oms_assistant_svc::start(assistant, ctx.clone()).await?;
    let outcome = measure(&bench, &catalog.url(), &assistant.url()).await;
    ctx.shutdown.cancel();
    let _ = assistant.wait().await;
    let _ = catalog.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn measure(
    bench: &AssistantBench,
    catalog_url: &str,
    assistant_url: &str,
) -> anyhow::Result<()> {
    let products: Vec<cat::Product> = labelled::catalog()
        .into_iter()
        .map(|p| cat::Product {
            sku: p.sku,
            texts: vec![cat::LocalizedText {
                locale: "en".into(),
                title: p.names.first().cloned().unwrap_or_default(),
                keywords: p.names.iter().skip(1).cloned().collect(),
                ..Default::default()
            }],
            active: true,
            ..Default::default()
        })
        .collect();
    CatalogServiceClient::new(mesh::channel(catalog_url).await?)
        .import_products(cat::ImportProductsRequest { products })
        .await
        .context("import the products")?;
    // Let the assistant read the names.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let client = AssistantServiceClient::new(mesh::channel(assistant_url).await?);
    let said: Arc<Vec<(String, String)>> = Arc::new(
        labelled::utterances()
            .into_iter()
            .filter(|u| LOCAL.contains(&u.intent.as_str()))
            .map(|u| (u.locale, u.text))
            .collect(),
    );
    println!(
        "assistant: {} text turns, {} in flight over 64 conversations, {} utterances of the labelled set",
        bench.turns,
        bench.concurrency,
        said.len()
    );
    let load = Load {
        requests: bench.turns,
        concurrency: bench.concurrency,
        until: None,
    };
    let report = drive("Converse (text)", load, {
        let (client, said) = (client.clone(), said.clone());
        move |i| {
            let (mut client, said) = (client.clone(), said.clone());
            async move {
                let (locale, text) = &said[i % said.len()];
                client
                    .converse(ConverseRequest {
                        user_id: format!("buyer-{}", i % 64),
                        session_id: format!("bench-{}", i % 64),
                        locale: locale.clone(),
                        text: text.clone(),
                        address: None,
                    })
                    .await
                    .map(drop)
                    .map_err(|s| s.to_string())
            }
        }
    })
    .await;
    println!("{}", report.line());
    println!(
        "p99 {:.2} ms per text turn against the 30 ms target",
        report.ms(0.99)
    );
    Ok(())
}
