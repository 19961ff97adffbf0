//! Reading a running exporter for top: its /metrics fetched every `--delay`, read as its
//! sources' and tags' updates, with the fetch itself as one more origin in the header. A
//! failed fetch fails every origin it brought, so that no number of an older scrape is
//! shown as current.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::fetch::Client;
use super::interpret::{Families, interpret};
use super::local::unix_time;
use super::model::{Health, Outcome, Update};
use super::series::Snapshot;
use crate::error_chain::Chain;

/// An exporter's /metrics and what the last fetch of it brought.
pub struct Remote {
    client: Client,
    families: Families,
    delay: Duration,
    /// The origins the last successful fetch brought.
    known: Mutex<Vec<String>>,
}

impl Remote {
    /// Reads `client`'s URL, whose tags are under `accounting_prefix`, every `delay`.
    pub fn new(client: Client, accounting_prefix: &str, delay: Duration) -> Remote {
        Remote {
            client,
            families: Families::new(accounting_prefix),
            delay,
            known: Mutex::new(Vec::new()),
        }
    }

    /// One fetch: an update of the fetch itself, then one per origin.
    pub async fn read(&self) -> Vec<Update> {
        let started = Instant::now();
        let fetched = self.client.get().await;
        let now = unix_time(SystemTime::now());
        let url = self.client.url().to_string();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok(text) => {
                let interpreted = interpret(&text, &self.families, now);
                let mut notes = Vec::new();
                if let Some(first) = interpreted.unreadable.first() {
                    let count = interpreted.unreadable.len();
                    notes.push(format!("lines not understood: {count}, the first: {first}"));
                }
                let fetch = Update {
                    origin: url,
                    outcome: Outcome::Read {
                        snapshot: Snapshot {
                            at: now,
                            series: Vec::new(),
                        },
                        health: Health {
                            duration: Some(started.elapsed().as_secs_f64()),
                            cpu: None,
                            notes,
                        },
                    },
                };
                let brought: Vec<String> = interpreted
                    .updates
                    .iter()
                    .map(|u| u.origin.clone())
                    .collect();
                let gone = known
                    .iter()
                    .filter(|origin| !brought.contains(origin))
                    .map(|origin| Update {
                        origin: origin.clone(),
                        outcome: Outcome::LeftOut(None),
                    })
                    .collect::<Vec<_>>();
                *known = brought;
                std::iter::once(fetch)
                    .chain(interpreted.updates)
                    .chain(gone)
                    .collect()
            }
            Err(e) => {
                let error = Chain(&e).to_string();
                let not_fetched = known.iter().map(|origin| Update {
                    origin: origin.clone(),
                    outcome: Outcome::Failed(format!("not fetched from {url}")),
                });
                std::iter::once(Update {
                    origin: url.clone(),
                    outcome: Outcome::Failed(error),
                })
                .chain(not_fetched)
                .collect()
            }
        }
    }

    /// Fetches every `--delay` on a task of its own, sending what each fetch brought to
    /// `updates`, until nobody receives them.
    pub fn spawn(self: Arc<Self>, updates: tokio::sync::mpsc::UnboundedSender<Update>) {
        tokio::spawn(async move {
            loop {
                for update in self.read().await {
                    if updates.send(update).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(self.delay).await;
            }
        });
    }
}
