//! `oms recommend evaluate`: the recommender against a popularity list, offline. A simulated
//! year of purchases (its own generator, `simulate`); each buyer's last order is held out; the
//! recommender learns every other purchase in time order and recommends ten items for each
//! buyer's home screen; so does the list of what sells most (among what reaches the buyer).
//! Scored by hit-rate@10 (the held-out order has an item in the ten) and NDCG@10 (how high).
//! Every recommendation is also checked against the stock: nothing a buyer cannot get.

mod simulate;

use std::collections::{BTreeSet, HashMap};

use clap::{Args, Subcommand};
use oms_catalog_svc::recommend::{Context, Recommender, Settings};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct RecommendArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score the recommender and the popularity baseline on a simulated year.
    Evaluate {
        /// Buyers in the simulated year.
        #[arg(long, default_value_t = 4_000)]
        users: usize,
        /// Seed of the simulated year.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Hit-rate and NDCG at 10.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Scores {
    pub hit_rate_at_10: f64,
    pub ndcg_at_10: f64,
}

#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub users: usize,
    pub purchases: usize,
    pub held_out: usize,
    pub recommender: Scores,
    pub popularity: Scores,
    /// Recommendations of an item no center with stock reaches for that buyer.
    pub undeliverable: usize,
}

pub async fn run(args: RecommendArgs) -> anyhow::Result<()> {
    match args.command {
        Command::Evaluate { users, seed, json } => {
            let evaluation = evaluate(users, seed);
            if json {
                println!("{}", serde_json::to_string(&evaluation)?);
            } else {
                print(&evaluation);
            }
            Ok(())
        }
    }
}

fn print(e: &Evaluation) {
    println!(
        "{} buyers, {} purchases, each buyer's last order held out ({})",
        e.users, e.purchases, e.held_out
    );
    println!("              hit-rate@10   NDCG@10");
    for (name, s) in [("recommender", e.recommender), ("popularity", e.popularity)] {
        println!(
            "{name:<13} {:>10.1}%   {:>7.4}",
            100.0 * s.hit_rate_at_10,
            s.ndcg_at_10
        );
    }
    let lift = |a: f64, b: f64| 100.0 * (a / b.max(f64::EPSILON) - 1.0);
    println!(
        "the recommender is {:.0}% better by hit-rate, {:.0}% by NDCG; {} recommendations of an item the buyer cannot get",
        lift(e.recommender.hit_rate_at_10, e.popularity.hit_rate_at_10),
        lift(e.recommender.ndcg_at_10, e.popularity.ndcg_at_10),
        e.undeliverable
    );
}

/// NDCG@10 of `ranked` against the `relevant` items.
fn ndcg(ranked: &[String], relevant: &BTreeSet<String>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, sku)| relevant.contains(*sku))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    if ideal > 0.0 { dcg / ideal } else { 0.0 }
}

pub fn evaluate(users: usize, seed: u64) -> Evaluation {
    let world = simulate::world(users, seed);
    // Each buyer's last order is held out.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, purchase) in world.purchases.iter().enumerate() {
        last.insert(&purchase.user_id, i);
    }
    let held: BTreeSet<usize> = last.values().copied().collect();
    let mut recommender = Recommender::new(Settings::default());
    for (i, purchase) in world.purchases.iter().enumerate() {
        if !held.contains(&i) {
            recommender.learn(purchase, |sku| world.category_of(sku));
        }
    }
    let (mut ours, mut theirs) = (Scores::default(), Scores::default());
    let mut undeliverable = 0;
    for i in &held {
        let purchase = &world.purchases[*i];
        let user: usize = purchase
            .user_id
            .strip_prefix("user-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        let relevant: BTreeSet<String> = purchase.skus.iter().cloned().collect();
        let allowed = |sku: &str| world.deliverable(user, sku);
        let recommended: Vec<String> = recommender
            .recommend(
                &purchase.user_id,
                None,
                &Context::Home,
                10,
                allowed,
                |sku| world.category_of(sku),
            )
            .into_iter()
            .map(|r| r.sku)
            .collect();
        undeliverable += recommended.iter().filter(|s| !allowed(s)).count();
        let popular = recommender.popular(10, allowed);
        for (list, scores) in [(&recommended, &mut ours), (&popular, &mut theirs)] {
            if list.iter().any(|s| relevant.contains(s)) {
                scores.hit_rate_at_10 += 1.0;
            }
            scores.ndcg_at_10 += ndcg(list, &relevant);
        }
    }
    let n = held.len().max(1) as f64;
    for scores in [&mut ours, &mut theirs] {
        scores.hit_rate_at_10 /= n;
        scores.ndcg_at_10 /= n;
    }
    Evaluation {
        users,
        purchases: world.purchases.len(),
        held_out: held.len(),
        recommender: ours,
        popularity: theirs,
        undeliverable,
    }
}
