//! Channels to peer services: lazy (peers may start later), load-balanced over every
//! endpoint given, with connect and request timeouts.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::runtime::StartError;

/// A channel to `peer` over the comma-separated `urls` (`http://host:port,…`), balanced
/// across them. It connects on first use, so peers can start in any order.
pub fn channel(peer: &'static str, urls: &str, timeout: Duration) -> Result<Channel, StartError> {
    let mut endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            Endpoint::from_shared(url.to_owned())
                .map(|endpoint| {
                    endpoint
                        .connect_timeout(Duration::from_secs(3))
                        .timeout(timeout)
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(30))
                        .keep_alive_while_idle(true)
                })
                .map_err(|e| StartError::Peer {
                    peer,
                    reason: format!("{url:?} is not a URL: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    match endpoints.len() {
        0 => Err(StartError::Peer {
            peer,
            reason: "no address configured".into(),
        }),
        1 => Ok(endpoints.remove(0).connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_peer_urls_are_clear_errors() {
        let error = channel("inventory", "", Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("inventory"), "{error}");
        let error = channel("inventory", "not a url", Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("not a URL"), "{error}");
        assert!(
            channel(
                "inventory",
                "http://127.0.0.1:1, http://127.0.0.1:2",
                Duration::from_secs(1)
            )
            .is_ok()
        );
    }
}
