//! Fills a Kafka topic with the lines of a file, one raw record per line
//! (no JSON around it), as the peers' benchmarks preload their index phase:
//!
//!     cargo run --release --example produce_lines -- BROKERS TOPIC FILE
//!
//! Prints the number of records once every one is acknowledged.

use std::io::BufRead;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(brokers), Some(topic), Some(file)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: produce_lines BROKERS TOPIC FILE".into());
    };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .set("compression.type", "none")
        .set("queue.buffering.max.kbytes", "262144")
        .create()?;
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&file)?);
    let mut records = 0u64;
    for line in reader.lines() {
        let line = line?;
        let mut record = BaseRecord::<(), str>::to(&topic).payload(line.as_str());
        // A full local queue: wait for deliveries to make room.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        records += 1;
    }
    producer.flush(Duration::from_secs(300))?;
    println!("{records}");
    Ok(())
}
