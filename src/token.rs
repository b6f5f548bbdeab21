//! `oms token`: DEVELOPMENT ONLY — mints an access token from the local dev key that `oms dev`
//! trusts, or prints the JWKS it verifies them with.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use oms_platform::config::parse_duration;

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The user (token subject).
    #[arg(long, default_value = "dev-user")]
    user: String,
    /// Space-separated scopes (orders:read, orders:write, courier, ops).
    #[arg(long, default_value = "orders:read orders:write")]
    scopes: String,
    /// How long the token is valid.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// Where `oms dev` keeps its files (and the dev key).
    #[arg(long = "data-dir", env = "OMS_DATA_DIR", default_value = ".oms")]
    data_dir: PathBuf,
    /// Print the JWKS instead of a token.
    #[arg(long)]
    jwks: bool,
}

pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let key = oms_gateway::dev_key::ensure(&args.data_dir).map_err(anyhow::Error::msg)?;
    if args.jwks {
        println!("{}", key.jwks);
    } else {
        println!(
            "{}",
            key.mint(&args.user, &args.scopes, args.ttl)
                .map_err(anyhow::Error::msg)?
        );
    }
    Ok(())
}
