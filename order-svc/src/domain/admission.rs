//! Whether a cart may go on to inventory now, given what the stock view knows and how many
//! units placements of this process already have under way. A crowd for a sold-out SKU is told
//! so at once, without a placement each; a crowd for the last units queues behind the
//! placements that may take them. The view may only be late, never early: it refuses only a
//! SKU it knows to be at zero everywhere (what inventory would answer at that moment, units
//! reserved by placements under way included), and lets inventory answer whenever it is not
//! sure.

use oms_platform::error::PreconditionViolation;

/// One SKU of a cart as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want<'a> {
    /// The SKU.
    pub sku: &'a str,
    /// Units wanted in this cart (all its lines of the SKU).
    pub units: i64,
    /// Units available everywhere as the view knows them; `None` when it cannot say.
    pub known: Option<i64>,
    /// Units placements of this process are taking right now.
    pub under_way: i64,
}

/// What to do with a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to inventory.
    Admit,
    /// Wait for placements under way to finish (they may give stock back), then ask again.
    Wait {
        /// The SKU to wait for.
        sku: String,
    },
    /// These SKUs are sold out everywhere: refuse without writing anything.
    SoldOut(Vec<String>),
}

/// Decides for a cart.
pub fn decide(wants: &[Want<'_>]) -> Verdict {
    let mut sold_out = Vec::new();
    let mut wait = None;
    for want in wants {
        let Some(known) = want.known else {
            continue;
        };
        if known <= 0 {
            sold_out.push(want.sku.to_owned());
        } else if known - want.under_way >= want.units {
            continue;
        } else if want.under_way > 0 {
            wait.get_or_insert_with(|| want.sku.to_owned());
        }
        // Some left but fewer than wanted, nothing under way: inventory tells exactly what.
    }
    if !sold_out.is_empty() {
        Verdict::SoldOut(sold_out)
    } else if let Some(sku) = wait {
        Verdict::Wait { sku }
    } else {
        Verdict::Admit
    }
}

/// What the app is told about each sold-out SKU, so it can update its cache.
pub fn sold_out_violations(skus: &[String]) -> Vec<PreconditionViolation> {
    skus.iter()
        .map(|sku| PreconditionViolation {
            kind: "SOLD_OUT".into(),
            subject: format!("sku/{sku}"),
            description: format!("{sku} is sold out everywhere"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(known: Option<i64>, under_way: i64, units: i64) -> Want<'static> {
        Want {
            sku: "CAP",
            units,
            known,
            under_way,
        }
    }

    #[test]
    fn what_the_view_cannot_say_goes_to_inventory() {
        assert_eq!(decide(&[want(None, 50, 1)]), Verdict::Admit);
    }

    #[test]
    fn free_units_admit_and_units_under_way_make_the_rest_wait() {
        assert_eq!(decide(&[want(Some(10), 9, 1)]), Verdict::Admit);
        assert_eq!(
            decide(&[want(Some(10), 10, 1)]),
            Verdict::Wait { sku: "CAP".into() }
        );
    }

    #[test]
    fn only_zero_is_sold_out_whatever_is_under_way() {
        assert_eq!(
            decide(&[want(Some(0), 0, 1)]),
            Verdict::SoldOut(vec!["CAP".into()])
        );
        assert_eq!(
            decide(&[want(Some(0), 3, 1)]),
            Verdict::SoldOut(vec!["CAP".into()]),
            "the units under way are reserved already: inventory says the same"
        );
        assert_eq!(
            decide(&[want(Some(2), 0, 3)]),
            Verdict::Admit,
            "some left: inventory says exactly how many"
        );
    }

    #[test]
    fn one_sold_out_line_refuses_the_whole_cart() {
        let wants = [
            Want {
                sku: "TEE",
                units: 1,
                known: Some(100),
                under_way: 0,
            },
            want(Some(0), 0, 1),
        ];
        assert_eq!(decide(&wants), Verdict::SoldOut(vec!["CAP".into()]));
    }
}
