//! The turn workers: claim queued turns from the store and run them. The queue lives in the
//! store, so a crash loses nothing: an expired lease makes the turn claimable again.

use crate::service::Service;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed turn stays reserved for its worker.
const LEASE: Duration = Duration::from_secs(60);
/// Idle workers look at the queue this often even without a wake-up (other replicas' turns).
const POLL: Duration = Duration::from_millis(500);

/// Runs `service.config.workers` workers until `shutdown` turns true.
pub async fn run_workers(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let mut handles = Vec::new();
    for worker in 0..service.config.workers {
        let service = service.clone();
        let mut shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let lease = Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
                match service.store.claim_turn(lease).await {
                    Ok(Some(turn)) => {
                        // Another turn may be waiting: let a sibling look too.
                        service.wake.notify_one();
                        let result = tokio::time::timeout(LEASE, service.run_turn(&turn)).await;
                        let outcome = match result {
                            Ok(Ok(())) => service.store.finish_turn(turn.id).await.map_err(|e| e.to_string()),
                            Ok(Err(err)) => Err(err.to_string()),
                            Err(_) => Err("turn timed out".to_string()),
                        };
                        if let Err(error) = outcome {
                            tracing::warn!(worker, turn = turn.id, attempts = turn.attempts, %error, "turn failed");
                            let max = service.config.max_attempts;
                            if let Err(e) = service.store.fail_turn(turn.id, &error, max).await {
                                tracing::error!(%e, "cannot record turn failure");
                            } else if turn.attempts >= max
                                && let Err(e) = service.give_up_turn(&turn).await
                            {
                                tracing::error!(%e, "cannot notify customer of failed turn");
                            }
                        }
                    }
                    Ok(None) => {
                        tokio::select! {
                            _ = service.wake.notified() => {}
                            _ = tokio::time::sleep(POLL) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot claim turns");
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        }));
    }
    let _ = shutdown.changed().await;
    for h in handles {
        let _ = h.await;
    }
}

/// Runs background tasks (one at a time per process) until `shutdown` turns true.
pub async fn run_task_worker(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    const TASK_LEASE: Duration = Duration::from_secs(120);
    const TASK_POLL: Duration = Duration::from_secs(1);
    const TASK_ATTEMPTS: i32 = 3;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let lease = Utc::now() + chrono::Duration::from_std(TASK_LEASE).unwrap_or_default();
        match service.store.claim_task(lease).await {
            Ok(Some(task)) => {
                tracing::info!(task = %task.id, kind = %task.kind, attempt = task.attempts, "task started");
                let outcome = match service.run_task(&task).await {
                    Ok(result) => service
                        .store
                        .finish_task(task.id, &result)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                if let Err(error) = outcome {
                    tracing::warn!(task = %task.id, %error, "task failed");
                    if let Err(e) = service
                        .store
                        .fail_task(task.id, &error, TASK_ATTEMPTS)
                        .await
                    {
                        tracing::error!(%e, "cannot record task failure");
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = service.task_wake.notified() => {}
                    _ = tokio::time::sleep(TASK_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(err) => {
                tracing::error!(%err, "cannot claim tasks");
                tokio::time::sleep(TASK_POLL).await;
            }
        }
    }
}

/// Returns conversations whose owner's lease ran out to their queue, every few seconds, until
/// `shutdown` turns true. Every replica may run it: each move is a compare-and-set.
pub async fn run_lease_sweeper(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    const SWEEP: Duration = Duration::from_secs(5);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match service.expire_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(conversations = n, "expired leases returned to their queues"),
            Err(e) => tracing::warn!(error = %e, "cannot expire leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP) => {}
            _ = shutdown.changed() => {}
        }
    }
}
