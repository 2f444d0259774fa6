//! In-process fan-out of live events to the streams of one conversation.
//!
//! Stored events are the source of truth (streams re-read them from the store); the hub only
//! wakes streams up and carries what is never stored: reply deltas and typing indicators.
//! With several replicas, a stream on another replica still sees stored events by polling.

use concierge_core::{ConversationId, LiveEvent};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

const CAPACITY: usize = 256;

#[derive(Default)]
pub struct LiveHub {
    channels: Mutex<HashMap<ConversationId, broadcast::Sender<LiveEvent>>>,
}

impl LiveHub {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn subscribe(&self, conversation: ConversationId) -> broadcast::Receiver<LiveEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(conversation)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    pub fn publish(&self, conversation: ConversationId, event: LiveEvent) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&conversation) {
            if tx.receiver_count() == 0 {
                // Nobody listens any more: forget the channel so the map does not grow.
                map.remove(&conversation);
            } else {
                let _ = tx.send(event);
            }
        }
    }

    /// Conversations with at least one live listener (for metrics).
    pub fn listeners(&self) -> usize {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|tx| tx.receiver_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_subscribers_of_the_conversation_receive() {
        let hub = LiveHub::new();
        let a = ConversationId::new();
        let b = ConversationId::new();
        let mut ra = hub.subscribe(a);
        let mut rb = hub.subscribe(b);
        hub.publish(a, LiveEvent::Typing);
        assert_eq!(ra.recv().await.ok(), Some(LiveEvent::Typing));
        assert!(rb.try_recv().is_err());
        drop(ra);
        hub.publish(a, LiveEvent::Typing);
        assert_eq!(hub.listeners(), 1);
    }
}
