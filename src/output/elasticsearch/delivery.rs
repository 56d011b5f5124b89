//! The delivery of one bulk request, as a pure state machine: which items
//! to send next, and what each answer does to them (done, retried, split in
//! halves, refused for good). The request task in [`super`] does the I/O and
//! the waiting around it; every rule lives here, with table tests.

use std::collections::VecDeque;

use super::response::Outcome;

/// What the server said to one send of some items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A bulk response: one outcome per item sent, in order.
    Items(Vec<Outcome>),
    /// The request as a whole was refused for its content (413, 400).
    Unfit { status: u16, message: String },
}

/// An item refused for good: it goes to the dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its position in the request.
    pub item: usize,
    pub status: u16,
    pub error_type: String,
    pub reason: String,
}

/// What one answer did, for counters and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub indexed: u64,
    pub already_indexed: u64,
    /// Items queued again; the caller waits (backoff) before the next send.
    pub retried: usize,
    /// Why the last of them is retried.
    pub retry_reason: String,
    /// The items sent were split in halves: `(status, items)`.
    pub split: Option<(u16, usize)>,
}

/// One request's items still to send, and those refused for good.
#[derive(Debug)]
pub struct Delivery {
    items: usize,
    /// Item sets still to send, in order; a split puts its halves first.
    queue: VecDeque<Vec<usize>>,
    pub refused: Vec<Refused>,
}

impl Delivery {
    /// A request of `items` items, all to send.
    pub fn new(items: usize) -> Self {
        Delivery {
            items,
            queue: VecDeque::from([(0..items).collect()]),
            refused: Vec::new(),
        }
    }

    /// The next items to send; `None` when every item is done.
    pub fn next_send(&mut self) -> Option<Vec<usize>> {
        self.queue.pop_front()
    }

    /// Whether `todo` is the whole request (its body can be sent as built).
    pub fn is_whole(&self, todo: &[usize]) -> bool {
        todo.len() == self.items
    }

    /// Applies the answer to sending `todo`.
    pub fn answer(&mut self, todo: Vec<usize>, answer: Answer) -> Step {
        let mut step = Step::default();
        match answer {
            // One bad or oversized item must not hold the rest: halves,
            // down to single items, which are refused with the status.
            Answer::Unfit { status, .. } if todo.len() > 1 => {
                step.split = Some((status, todo.len()));
                let (first, second) = todo.split_at(todo.len() / 2);
                self.queue.push_front(second.to_vec());
                self.queue.push_front(first.to_vec());
            }
            Answer::Unfit { status, message } => {
                self.refused.extend(todo.first().map(|&item| Refused {
                    item,
                    status,
                    error_type: format!("http_{status}"),
                    reason: message,
                }))
            }
            Answer::Items(outcomes) => {
                let mut retry = Vec::new();
                for (&item, outcome) in todo.iter().zip(outcomes) {
                    match outcome {
                        Outcome::Indexed => step.indexed += 1,
                        Outcome::AlreadyIndexed => step.already_indexed += 1,
                        Outcome::Retry(reason) => {
                            retry.push(item);
                            step.retry_reason = reason;
                        }
                        Outcome::Reject {
                            status,
                            error_type,
                            reason,
                        } => self.refused.push(Refused {
                            item,
                            status,
                            error_type,
                            reason,
                        }),
                    }
                }
                step.retried = retry.len();
                if !retry.is_empty() {
                    self.queue.push_front(retry);
                }
            }
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(status: u16, error_type: &str) -> Outcome {
        Outcome::Reject {
            status,
            error_type: error_type.into(),
            reason: format!("{error_type} reason"),
        }
    }

    fn unfit(status: u16) -> Answer {
        Answer::Unfit {
            status,
            message: format!("HTTP {status}"),
        }
    }

    /// Runs a request of `items` items against `answers` (one per send, in
    /// order); returns what was sent each time, the totals and the refused
    /// items with their error types.
    fn deliver(
        items: usize,
        answers: Vec<Answer>,
    ) -> (Vec<Vec<usize>>, Step, Vec<(usize, String)>) {
        let mut delivery = Delivery::new(items);
        let mut sent = Vec::new();
        let mut total = Step::default();
        let mut answers = answers.into_iter();
        while let Some(todo) = delivery.next_send() {
            sent.push(todo.clone());
            let answer = answers.next().expect("an answer for every send");
            let step = delivery.answer(todo, answer);
            total.indexed += step.indexed;
            total.already_indexed += step.already_indexed;
            total.retried += step.retried;
        }
        assert!(answers.next().is_none(), "every answer used");
        let refused = delivery
            .refused
            .iter()
            .map(|r| (r.item, r.error_type.clone()))
            .collect();
        (sent, total, refused)
    }

    #[test]
    fn every_answer_does_what_it_says() {
        use Outcome::*;
        let retry = || Retry("es_rejected_execution_exception".into());
        struct Case {
            what: &'static str,
            items: usize,
            answers: Vec<Answer>,
            sent: Vec<Vec<usize>>,
            indexed: u64,
            already: u64,
            retried: usize,
            refused: Vec<(usize, &'static str)>,
        }
        let cases = [
            Case {
                what: "all indexed in one send",
                items: 3,
                answers: vec![Answer::Items(vec![Indexed, Indexed, Indexed])],
                sent: vec![vec![0, 1, 2]],
                indexed: 3,
                already: 0,
                retried: 0,
                refused: vec![],
            },
            Case {
                what: "409s are done, not refused",
                items: 2,
                answers: vec![Answer::Items(vec![AlreadyIndexed, Indexed])],
                sent: vec![vec![0, 1]],
                indexed: 1,
                already: 1,
                retried: 0,
                refused: vec![],
            },
            Case {
                what: "only the retried items are sent again, until they pass",
                items: 4,
                answers: vec![
                    Answer::Items(vec![
                        Indexed,
                        retry(),
                        reject(400, "mapper_parsing_exception"),
                        retry(),
                    ]),
                    Answer::Items(vec![retry(), Indexed]),
                    Answer::Items(vec![Indexed]),
                ],
                sent: vec![vec![0, 1, 2, 3], vec![1, 3], vec![1]],
                indexed: 3,
                already: 0,
                retried: 3,
                refused: vec![(2, "mapper_parsing_exception")],
            },
            Case {
                what: "a request too large is halved down to the one item that is",
                items: 4,
                answers: vec![
                    unfit(413),
                    unfit(413),
                    unfit(413),
                    Answer::Items(vec![Indexed]),
                    Answer::Items(vec![Indexed, Indexed]),
                ],
                sent: vec![vec![0, 1, 2, 3], vec![0, 1], vec![0], vec![1], vec![2, 3]],
                indexed: 3,
                already: 0,
                retried: 0,
                refused: vec![(0, "http_413")],
            },
            Case {
                what: "a single item refused as a whole is refused with the status",
                items: 1,
                answers: vec![unfit(400)],
                sent: vec![vec![0]],
                indexed: 0,
                already: 0,
                retried: 0,
                refused: vec![(0, "http_400")],
            },
        ];
        for case in cases {
            let (sent, total, refused) = deliver(case.items, case.answers);
            assert_eq!(sent, case.sent, "{}: sends", case.what);
            assert_eq!(total.indexed, case.indexed, "{}: indexed", case.what);
            assert_eq!(total.already_indexed, case.already, "{}: 409", case.what);
            assert_eq!(total.retried, case.retried, "{}: retried", case.what);
            let want: Vec<(usize, String)> = case
                .refused
                .iter()
                .map(|(i, t)| (*i, t.to_string()))
                .collect();
            assert_eq!(refused, want, "{}: refused", case.what);
            // Every item ends exactly once: indexed, 409 or refused.
            assert_eq!(
                total.indexed + total.already_indexed + refused.len() as u64,
                case.items as u64,
                "{}: every item accounted for",
                case.what
            );
        }
    }
}
