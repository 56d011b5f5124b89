//! `logpipe check --connect`: tries what the pipeline files point at, and
//! changes nothing. One line per target: the Kafka brokers of a hop
//! (reachable, authenticated), each topic it produces to or consumes
//! (present, with its partitions), each Elasticsearch output (a host answers
//! with the credentials; the index template `logpipe setup` installs is
//! there).

use crate::kafka::admin;
use crate::output::elasticsearch::client::Client;
use crate::output::elasticsearch::setup;
use crate::output::OutputSpec;
use crate::pipeline::Pipeline;

/// One target tried: what it is, and how it answered.
pub struct Probe {
    pub pipeline: String,
    pub target: String,
    pub outcome: Result<String, String>,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(what) => write!(f, "ok    {} ({}): {what}", self.target, self.pipeline),
            Err(why) => write!(f, "FAIL  {} ({}): {why}", self.target, self.pipeline),
        }
    }
}

/// Tries every target of `pipelines`, in file order.
pub async fn probe_all(pipelines: &[Pipeline]) -> Vec<Probe> {
    let mut probes = Vec::new();
    for p in pipelines {
        if let Some(hop) = &p.hop {
            kafka(p, hop, &mut probes).await;
        }
        for output in &p.outputs {
            if let OutputSpec::Elasticsearch(es) = &output.spec {
                probes.push(elasticsearch(p, es).await);
            }
        }
    }
    probes
}

async fn kafka(p: &Pipeline, hop: &crate::kafka::Hop, probes: &mut Vec<Probe>) {
    let brokers = format!("kafka {}", hop.brokers.join(","));
    // The topic the ship half writes (a templated one is known only when
    // events arrive) and the ones the index half reads.
    let mut topics: Vec<String> = Vec::new();
    if hop.topic.is_static() {
        topics.push(hop.topic.as_str().to_owned());
    }
    for t in &hop.topics {
        if !topics.contains(t) {
            topics.push(t.clone());
        }
    }
    match admin::describe(hop, &topics).await {
        Err(why) => probes.push(Probe {
            pipeline: p.name.clone(),
            target: brokers,
            outcome: Err(why),
        }),
        Ok((answering, counts)) => {
            probes.push(Probe {
                pipeline: p.name.clone(),
                target: brokers,
                outcome: Ok(format!("{answering} broker(s) answer")),
            });
            for (topic, count) in topics.into_iter().zip(counts) {
                probes.push(Probe {
                    pipeline: p.name.clone(),
                    target: format!("kafka topic {topic}"),
                    outcome: match count {
                        Some(n) => Ok(format!("{n} partition(s)")),
                        None => Err("missing: `logpipe topics ensure` creates it".into()),
                    },
                });
            }
        }
    }
}

async fn elasticsearch(p: &Pipeline, es: &crate::output::elasticsearch::Elasticsearch) -> Probe {
    let hosts: Vec<String> = es.hosts.iter().map(|u| u.to_string()).collect();
    let target = format!("elasticsearch {}", hosts.join(","));
    let outcome = async {
        let client = Client::new(es, p.name.as_str().into()).map_err(|e| e.to_string())?;
        let root = client.root().await?;
        let version = setup::Version::parse(&root)?;
        let pattern = setup::index_pattern(es.index.as_str());
        let (path, _) = setup::template_request(&pattern, &version);
        let found = format!(
            "{:?} {} answers with these credentials",
            version.distribution, version.number
        );
        let mut last = String::from("no host");
        for host in &es.hosts {
            let Ok(url) = host.join(&path) else { continue };
            match client.http().get(url).send().await {
                Ok(r) if r.status().is_success() => {
                    return Ok(format!("{found}; template {path} is installed"));
                }
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    return Err(format!(
                        "{found}, but template {path} for `{pattern}` is missing: `logpipe setup` installs it"
                    ));
                }
                Ok(r) => {
                    last = format!("{found}, but reading template {path} gives HTTP {}", r.status());
                    break;
                }
                Err(e) => last = format!("{host}: {e}"),
            }
        }
        Err(last)
    }
    .await;
    Probe {
        pipeline: p.name.clone(),
        target,
        outcome,
    }
}
