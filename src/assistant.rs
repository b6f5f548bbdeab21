//! `oms assistant evaluate`: the NLU on the labelled utterances (`assistant-svc/data/
//! utterances.tsv`): intent accuracy, slot exact match, per intent, and the misses.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use oms_assistant_svc::{
    labelled,
    nlu::{self, Method, Window, matching::Match, matching::Matcher},
};

#[derive(Args, Debug)]
pub struct AssistantArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score the NLU on the labelled utterances.
    Evaluate {
        /// Also list every miss.
        #[arg(long)]
        misses: bool,
    },
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Standard => "standard",
        Method::Express => "express",
        Method::SameDay => "same_day",
    }
}

fn window_name(window: Window) -> String {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    match window {
        Window::Tomorrow => "tomorrow".into(),
        Window::OnWeekday(day) => DAYS[usize::from(day % 7)].into(),
        Window::BeforeHour(hour) => format!("before{hour}"),
    }
}

/// Whether the understood slots match the labelled ones.
fn slots_match(expected: &[(String, String)], slots: &nlu::Slots) -> bool {
    expected.iter().all(|(key, value)| match key.as_str() {
        "sku" => {
            let accepted: Vec<&str> = value.split('|').collect();
            match &slots.product {
                Some(Match::One(sku)) => accepted.contains(&sku.as_str()),
                Some(Match::Ambiguous(skus)) => {
                    accepted.len() > 1 && skus.iter().all(|s| accepted.contains(&s.as_str()))
                }
                None => false,
            }
        }
        "qty" => slots.quantity.map(|q| q.to_string()).as_deref() == Some(value.as_str()),
        "method" => slots.method.map(method_name) == Some(value.as_str()),
        "window" => slots.window.map(window_name).as_deref() == Some(value.as_str()),
        _ => false,
    })
}

pub fn run(args: AssistantArgs) -> anyhow::Result<()> {
    let Command::Evaluate { misses } = args.command;
    let matcher = Matcher::new(&labelled::catalog());
    let set = labelled::utterances();
    let mut right_intent = 0;
    let (mut with_slots, mut right_slots) = (0, 0);
    let mut per_intent: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    let (mut held_out, mut held_out_right) = (0, 0);
    let started = std::time::Instant::now();
    for item in &set {
        let understood = nlu::understand(&item.text, &matcher);
        let intent_ok = understood.intent.name() == item.intent;
        let entry = per_intent.entry(item.intent.clone()).or_default();
        entry.0 += 1;
        if intent_ok {
            right_intent += 1;
            entry.1 += 1;
        }
        let slots_ok = slots_match(&item.slots, &understood.slots);
        if item.held_out {
            held_out += 1;
            if intent_ok && slots_ok {
                held_out_right += 1;
            }
        }
        if !item.slots.is_empty() {
            with_slots += 1;
            if slots_ok && intent_ok {
                right_slots += 1;
            }
        }
        if !intent_ok || !slots_ok {
            missed.push(format!(
                "  [{}] {:?}: expected {} {:?}, got {} {:?}",
                item.locale,
                item.text,
                item.intent,
                item.slots,
                understood.intent.name(),
                understood.slots
            ));
        }
    }
    let per_turn = started.elapsed() / u32::try_from(set.len().max(1)).unwrap_or(1);
    let share = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let english = set.iter().filter(|u| u.locale == "en").count();
    println!(
        "{} labelled utterances ({english} English, {} German), {} with slots",
        set.len(),
        set.len() - english,
        with_slots
    );
    println!("intent accuracy  {:.1}%", share(right_intent, set.len()));
    println!(
        "slot exact match {:.1}% (intent and every labelled slot right)",
        share(right_slots, with_slots)
    );
    println!(
        "held out ({held_out} written after the rules were tuned): {:.1}% fully right",
        share(held_out_right, held_out)
    );
    println!("understanding one utterance: {per_turn:?} on average");
    for (intent, (all, right)) in &per_intent {
        println!("  {intent:<15} {right:>3}/{all:<3}");
    }
    if misses {
        for line in &missed {
            println!("{line}");
        }
    } else if !missed.is_empty() {
        println!("{} misses (--misses lists them)", missed.len());
    }
    Ok(())
}
