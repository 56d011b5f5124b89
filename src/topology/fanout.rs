//! One batch to every output: each gets the events its `if` accepts and a
//! clone of the token, so the source hears "delivered" only when every
//! output delivered. An output whose condition accepts none of a batch's
//! events gets nothing and holds no clone, so it cannot hold the batch back.

use tokio::sync::mpsc;

use crate::condition::Condition;
use crate::error::StageError;
use crate::event::{Batch, Event};

/// An output's channel and the condition that picks its events.
pub struct Route {
    pub sender: mpsc::Sender<Batch>,
    pub condition: Option<Condition>,
}

pub async fn run(mut input: mpsc::Receiver<Batch>, routes: Vec<Route>) -> Result<(), StageError> {
    while let Some(batch) = input.recv().await {
        if let [Route {
            sender,
            condition: None,
        }] = routes.as_slice()
        {
            if sender.send(batch).await.is_err() {
                return Err(StageError::Fatal("an output stopped".into()));
            }
            continue;
        }
        for (route, events) in routes.iter().zip(split(&routes, &batch.events)) {
            if events.is_empty() {
                continue;
            }
            let copy = Batch::new(events, batch.ack.clone());
            if route.sender.send(copy).await.is_err() {
                return Err(StageError::Fatal("an output stopped".into()));
            }
        }
        // The clones now decide the outcome; this share is done. When no
        // output took an event the batch is delivered: nothing was meant to go.
        batch.ack.ack();
    }
    Ok(())
}

/// The events of a batch each route accepts, in order.
fn split(routes: &[Route], events: &[Event]) -> Vec<Vec<Event>> {
    routes
        .iter()
        .map(|route| match &route.condition {
            None => events.to_vec(),
            Some(condition) => events
                .iter()
                .filter(|e| condition.eval(e))
                .cloned()
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckTracker;
    use serde_json::json;

    fn tagged(tag: &str) -> Event {
        let mut event = Event::from_message(tag);
        event.add_tag(tag);
        event
    }

    fn route(condition: Option<&str>) -> (Route, mpsc::Receiver<Batch>) {
        let (sender, rx) = mpsc::channel(4);
        let condition = condition.map(|c| Condition::parse(c).unwrap());
        (Route { sender, condition }, rx)
    }

    #[tokio::test]
    async fn each_output_gets_only_the_events_its_condition_accepts() {
        let (a, mut rx_a) = route(Some(r#""access" in [tags]"#));
        let (b, mut rx_b) = route(Some(r#""error" in [tags]"#));
        let (tx, rx) = mpsc::channel(4);
        let fanout = tokio::spawn(run(rx, vec![a, b]));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let events = vec![tagged("access"), tagged("error"), tagged("access")];
        tx.send(Batch::new(events, tracker.track(lane, 1u64)))
            .await
            .unwrap();
        let got_a = rx_a.recv().await.unwrap();
        let got_b = rx_b.recv().await.unwrap();
        assert_eq!(got_a.events.len(), 2);
        assert_eq!(got_b.events.len(), 1);
        assert_eq!(got_b.events[0].fields["message"], json!("error"));
        got_a.ack.ack();
        tracker.drain();
        assert!(
            tracker.take_progress().is_empty(),
            "output b still holds it"
        );
        got_b.ack.ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(lane, 1)]);
        drop(tx);
        fanout.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_output_that_gets_no_event_does_not_hold_the_batch() {
        let (a, mut rx_a) = route(Some(r#""access" in [tags]"#));
        let (b, mut rx_b) = route(Some(r#""error" in [tags]"#));
        let (tx, rx) = mpsc::channel(4);
        let fanout = tokio::spawn(run(rx, vec![a, b]));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        tx.send(Batch::new(
            vec![tagged("access")],
            tracker.track(lane, 1u64),
        ))
        .await
        .unwrap();
        tx.send(Batch::new(vec![tagged("other")], tracker.track(lane, 2u64)))
            .await
            .unwrap();
        rx_a.recv().await.unwrap().ack.ack();
        drop(tx);
        fanout.await.unwrap().unwrap();
        assert!(rx_b.try_recv().is_err());
        tracker.recv().await;
        tracker.drain();
        let progress = tracker.take_progress();
        assert_eq!(progress, vec![(lane, 2)]);
        assert!(!tracker.has_failed());
    }
}
